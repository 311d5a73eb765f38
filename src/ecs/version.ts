/** The ECS version pgsight's records follow (https://www.elastic.co/guide/en/ecs/8.11/index.html). */
export const ECS_VERSION = '8.11.0';
