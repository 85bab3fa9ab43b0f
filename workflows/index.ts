/** Entry point bundled for the worker: every workflow type evalflow registers. */
export { EvaluationWorkflow } from './evaluation.js';
export { InvocationWorkflow } from './invocation.js';
export { NightlyRegressionWorkflow } from './nightly.js';
