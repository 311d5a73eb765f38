// import-in-the-middle ships no types for its loader-hook module; these are the node:module hook signatures.
declare module 'import-in-the-middle/hook.mjs' {
  export const initialize: (data: unknown) => Promise<void> | void;
  export const resolve: (...args: unknown[]) => unknown;
  export const load: (...args: unknown[]) => unknown;
}
