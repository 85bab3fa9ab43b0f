/**
 * evalflow's deployment examples (examples/local_<type>.yaml) pass `evalflow run --dry-run` and show their
 * server: image or model, command, health URL; each task's URL comes from the deployment and its endpoint type.
 */
import { describe, expect, it } from 'vitest';
import { main } from '../../client/cli.js';
import { packageRoot } from '../../common/paths.js';

const EXAMPLES: Record<string, { server: string; health: string }> = {
  llama_cpp: { server: '--model /model/model.gguf --model-id smollm2-135m-instruct --parallel 2', health: 'http://127.0.0.1:8000/health' },
  vllm: { server: 'vllm serve meta-llama/Llama-3.1-8B-Instruct --tensor-parallel-size=1', health: 'http://127.0.0.1:8000/health' },
  sglang: { server: 'python3 -m sglang.launch_server --model-path /checkpoint', health: 'http://127.0.0.1:8000/health' },
  nim: { server: 'from nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.6', health: 'http://127.0.0.1:8000/v1/health/ready' },
  trtllm: { server: 'trtllm-serve serve /checkpoint --tp_size=1', health: 'http://127.0.0.1:8000/health' },
  generic: { server: 'my-server --port 8000 --model /checkpoint --served-name my-model --threads 8', health: 'http://127.0.0.1:8000/health' },
};

describe.each(Object.entries(EXAMPLES))('examples/local_%s.yaml', (type, expected) => {
  it('passes evalflow run --dry-run and shows the server it starts', async () => {
    let stdout = '';
    let stderr = '';
    const argv = ['run', '-c', `${packageRoot()}/examples/local_${type}.yaml`, '--dry-run', '--json'];
    const code = await main(argv, { out: (t) => (stdout += t), err: (t) => (stderr += t), isTTY: false });
    expect(code, stderr).toBe(0);
    const { invocation } = JSON.parse(stdout) as { invocation: { tasks: { deployment: { type: string; healthUrl: string }; endpoint: { url: string } }[] } };
    for (const task of invocation.tasks) {
      expect(task.deployment.type).toBe(type);
      expect(task.deployment.healthUrl).toBe(expected.health);
      expect(task.endpoint.url).toMatch(/^http:\/\/127\.0\.0\.1:8000\/v1\/(chat\/)?completions$/);
    }
    let text = '';
    expect(await main(['run', '-c', `${packageRoot()}/examples/local_${type}.yaml`, '--dry-run'], { out: (t) => (text += t), err: () => undefined, isTTY: false })).toBe(0);
    expect(text).toContain(expected.server);
    expect(text).toContain(`# server ready when ${expected.health} answers 200`);
  });
});
