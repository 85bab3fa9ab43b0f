/**
 * Planning a job for the Slurm executor (pure): the remote job dir under `execution.output_dir`, the
 * harness command (evalflow's harness on the node with runtime `none`, the task's image through pyxis),
 * the paths the harness sees, how evalflow connects, and what a dry run shows (the whole sbatch script).
 */
import { posix } from 'node:path';
import type { TaskPlan } from '../../config/plan.js';
import type { SlurmExecution } from '../../config/schema.js';
import { ConfigError } from '../../config/errors.js';
import type { ExecutionPlan } from '../plans.js';
import { RESULTS_IN_CONTAINER, RUN_CONFIG_IN_CONTAINER } from '../local/docker/layout.js';
import { deploymentScript, REMOTE_FILES, renderSbatchScript } from './script.js';
import type { SlurmSpec } from './spec.js';
import { llamaCppArgs, type ServerSpec } from '../server-spec.js';

export function planSlurm(execution: SlurmExecution, task: TaskPlan, runDirName: string, jobId: string, server?: ServerSpec): ExecutionPlan {
  const remoteJobDir = posix.join(execution.output_dir, runDirName, task.jobName);
  const runConfig = posix.join(remoteJobDir, REMOTE_FILES.runConfig);
  let harness: SlurmSpec['harness'];
  let harnessPaths: ExecutionPlan['harnessPaths'];
  if (execution.runtime === 'none') {
    if (!task.task.builtin) {
      const key = `evaluation.tasks[${task.index}].name`;
      throw new ConfigError(`${key}: task ${task.task.fullName} runs in container ${task.container ?? '?'} and needs execution.runtime=pyxis (runtime 'none' runs evalflow's built-in tasks only)`, key);
    }
    harness = { argv: [...execution.harness_command, 'run_eval', '--run_config', runConfig, '--stage_dir', posix.join(remoteJobDir, 'logs')] };
    harnessPaths = { outputDir: posix.join(remoteJobDir, 'artifacts'), ...(task.datasetDir ? { datasetDir: task.datasetDir } : {}) };
  } else {
    if (!task.container) {
      const key = `evaluation.tasks[${task.index}].container`;
      throw new ConfigError(`${key}: runtime pyxis needs an image for ${task.task.fullName} (set the task's container, or use execution.runtime=none for evalflow's built-in tasks)`, key);
    }
    const mounts: Record<string, string> = {
      [posix.join(remoteJobDir, 'artifacts')]: RESULTS_IN_CONTAINER,
      [runConfig]: `${RUN_CONFIG_IN_CONTAINER}:ro`,
      ...(execution.mounts.evaluation ?? {}),
      ...(task.datasetDir && task.datasetMountPath ? { [task.datasetDir]: `${task.datasetMountPath}:ro` } : {}),
    };
    harness = { argv: ['nemo-evaluator', 'run_eval', '--run_config', RUN_CONFIG_IN_CONTAINER], image: task.container, mounts };
    harnessPaths = { outputDir: RESULTS_IN_CONTAINER, ...(task.datasetMountPath ? { datasetDir: task.datasetMountPath } : {}) };
  }
  const ssh = execution.ssh;
  const hostKeys = ssh.host_key == null ? [] : Array.isArray(ssh.host_key) ? ssh.host_key : [ssh.host_key];
  const spec: SlurmSpec = {
    kind: 'slurm',
    connection: {
      host: execution.hostname,
      port: ssh.port,
      user: execution.username,
      ...(ssh.key_file ? { keyFile: ssh.key_file } : {}),
      ...(ssh.known_hosts_file ? { knownHostsFile: ssh.known_hosts_file } : {}),
      ...(hostKeys.length ? { hostKeys } : {}),
      trustOnFirstUse: ssh.trust_on_first_use,
    },
    remoteJobDir,
    settings: {
      account: execution.account,
      partition: execution.partition,
      num_nodes: execution.num_nodes,
      ntasks_per_node: execution.ntasks_per_node,
      gres: execution.gres,
      gpus_per_node: execution.gpus_per_node,
      walltime: execution.walltime,
      subproject: execution.subproject,
      sbatch_comment: execution.sbatch_comment,
      sbatch_extra_flags: execution.sbatch_extra_flags,
      runtime: execution.runtime,
      mounts: execution.mounts,
      deployment: execution.deployment,
      endpoint_readiness_timeout: execution.endpoint_readiness_timeout,
    },
    harness,
    ...(server ? { deployment: inJobDeployment(execution, server) } : {}),
    pollIntervalS: execution.poll_interval,
  };
  const envNames = [...new Set([...Object.keys(task.env), ...Object.keys(server?.env ?? {})])];
  const script = renderSbatchScript({ jobId, attempt: 1, remoteJobDir, settings: spec.settings, harness, ...(spec.deployment ? { deployment: spec.deployment } : {}), envNames, generator: 'evalflow (dry run)' });
  return {
    backend: `slurm/${execution.runtime}`,
    executor: spec,
    // The server is a step of the harness's own job: the workflow waits for no endpoint, the job does.
    ...(server ? { server } : {}),
    harnessPaths,
    describe: [
      `# Slurm on ${execution.username}@${execution.hostname}:${ssh.port}, remote job dir ${remoteJobDir}; ${REMOTE_FILES.script} of attempt 1:`,
      ...script.trimEnd().split('\n').map((l) => `#   ${l}`),
      ...(spec.deployment ? [`# ${REMOTE_FILES.deployment}:`, `#   ${deploymentScript(spec.deployment).trimEnd()}`] : []),
    ],
  };
}

/**
 * The deployment as a step of the job. Container servers (vllm, sglang, nim, trtllm, generic) run their image
 * through pyxis; evalflow's llama_cpp server runs on the node (runtime none) from `model_server_command`.
 */
function inJobDeployment(execution: SlurmExecution, server: ServerSpec): NonNullable<SlurmSpec['deployment']> {
  // config/schema.ts has refused the combinations that cannot run (llama_cpp without runtime none or a model path, …).
  if (server.type === 'llama_cpp') {
    if (!server.modelPath) throw new Error('llama_cpp on Slurm without deployment.model_path');
    return { argv: [...execution.model_server_command, ...llamaCppArgs(server, server.modelPath)], healthUrl: server.healthUrl };
  }
  return {
    argv: server.argv,
    image: server.image,
    mounts: Object.fromEntries(server.mounts.map((m) => [m.source, m.readOnly ? `${m.target}:ro` : m.target])),
    healthUrl: server.healthUrl,
  };
}
