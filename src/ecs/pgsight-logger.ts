/**
 * The logger pgsight's own records go through. The preload installs its logger here; without the preload,
 * the first record creates an ECS logger from the environment (stdout or PGSIGHT_LOG_FILE).
 */
import { processConfig } from '../config/env.js';
import { createEcsLogger, type PgsightLogger } from './ecs-logger.js';

let current: PgsightLogger | undefined;

export function setPgsightLogger(logger: PgsightLogger): void {
  current = logger;
}

export function pgsightLogger(): PgsightLogger {
  current ??= createEcsLogger(processConfig());
  return current;
}
