import { describe, expect, it } from 'vitest';
import { parseDockerArgs, splitWords } from '../../backends/local/docker/args.js';
import { ConfigError } from '../../config/errors.js';

function configError(text: string): ConfigError {
  try {
    parseDockerArgs(text);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`no error for ${text}`);
}

describe('extra_docker_args → Docker API', () => {
  it('maps resources, devices, mounts and process flags', () => {
    const args = parseDockerArgs(
      `--shm-size=16g -m 512m --memory-swap -1 --cpus 1.5 --cpuset-cpus 0-1 --pids-limit 100 --ulimit nofile=1024:2048 --ulimit memlock=-1 ` +
        `-v /data:/data:ro --volume=/scratch:/scratch --mount type=bind,source=/a,target=/b,readonly --mount type=tmpfs,target=/t,tmpfs-size=64m ` +
        `--tmpfs /run:rw,size=1m --device /dev/fuse -e HF_HOME=/cache -e 'MSG=hello world' -u 1000:1000 -w /work -l team=eval ` +
        `--cap-add SYS_PTRACE --security-opt seccomp=unconfined --ipc host --privileged --add-host judge:10.0.0.1 --runtime nvidia --stop-signal SIGINT`,
    );
    expect(args.hostConfig).toEqual({
      ShmSize: 16 * 1024 ** 3,
      Memory: 512 * 1024 ** 2,
      MemorySwap: -1,
      NanoCpus: 1.5e9,
      CpusetCpus: '0-1',
      PidsLimit: 100,
      Ulimits: [
        { Name: 'nofile', Soft: 1024, Hard: 2048 },
        { Name: 'memlock', Soft: -1, Hard: -1 },
      ],
      Binds: ['/data:/data:ro', '/scratch:/scratch'],
      Mounts: [
        { Type: 'bind', Source: '/a', Target: '/b', ReadOnly: true },
        { Type: 'tmpfs', Source: '', Target: '/t', TmpfsOptions: { SizeBytes: 64 * 1024 ** 2 } },
      ],
      Tmpfs: { '/run': 'rw,size=1m' },
      Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }],
      CapAdd: ['SYS_PTRACE'],
      SecurityOpt: ['seccomp=unconfined'],
      IpcMode: 'host',
      Privileged: true,
      ExtraHosts: ['judge:10.0.0.1'],
      Runtime: 'nvidia',
    });
    expect(args.env).toEqual(['HF_HOME=/cache', 'MSG=hello world']);
    expect(args.labels).toEqual({ team: 'eval' });
    expect(args).toMatchObject({ user: '1000:1000', workingDir: '/work', stopSignal: 'SIGINT', warnings: [] });
  });

  it('maps --gpus as the docker CLI does (DeviceRequests)', () => {
    const gpus = (v: string) => parseDockerArgs(`--gpus ${v}`).hostConfig.DeviceRequests;
    const base = { Driver: '', DeviceIDs: [], Capabilities: [['gpu']], Options: {} };
    expect(gpus('all')).toEqual([{ ...base, Count: -1 }]);
    expect(gpus('2')).toEqual([{ ...base, Count: 2 }]);
    expect(gpus('"device=0,2"')).toEqual([{ ...base, Count: 0, DeviceIDs: ['0', '2'] }]);
    expect(gpus(`'"capabilities=compute,utility",count=1'`)).toEqual([{ ...base, Count: 1, Capabilities: [['compute', 'utility']] }]);
    expect(configError('--gpus driver=nvidia').message).toMatch(/--gpus: names no GPUs/);
  });

  it('accepts no-op flags with a warning naming them', () => {
    const args = parseDockerArgs('--rm --init --network=host -p 8000:8000');
    expect(args.hostConfig).toEqual({});
    expect(args.warnings).toEqual([
      'execution.extra_docker_args: --rm has no effect (evalflow removes its containers at teardown)',
      'execution.extra_docker_args: --init has no effect (always on)',
      'execution.extra_docker_args: --network host has no effect (always on)',
      'execution.extra_docker_args: --publish has no effect (containers use host networking)',
    ]);
    expect(parseDockerArgs('').hostConfig).toEqual({});
  });

  it('refuses what cannot be mapped, naming the key and the flag', () => {
    const cases: Array<[string, RegExp]> = [
      ['--name foo', /unsupported docker flag --name/],
      ['--env-file /x', /unsupported docker flag --env-file/],
      ['--network bridge', /--network: evalflow runs containers with host networking only/],
      ['-m lots', /-m: expected a size like 512m or 2g, got "lots"/],
      ['--cpus 0', /--cpus: expected a positive number/],
      ['-e TOKEN', /-e: expected NAME=VALUE \(to pass a variable from the host, use env_vars with host:NAME\)/],
      ['-v data:/data', /named volumes are not supported/],
      ['--mount type=volume,target=/x', /type=volume is not supported/],
      ['--label evalflow.job=x', /labels evalflow\.\* are set by evalflow/],
      ['--privileged=yes', /--privileged: expected true or false/],
      ['--shm-size', /--shm-size: needs a value/],
      ['ubuntu', /unexpected argument "ubuntu" \(only flags go here\)/],
      ['-e A=$HOME', /shell expansion/],
      ['-e "A=$(id)"', /shell expansion/],
      ['--rm; rm -rf /', /shell operator ";"/],
      ["-e 'A=open", /unterminated single quote/],
    ];
    for (const [text, message] of cases) {
      const err = configError(text);
      expect(err.keyPath, text).toBe('execution.extra_docker_args');
      expect(err.message, text).toMatch(/^execution\.extra_docker_args: /);
      expect(err.message, text).toMatch(message);
    }
  });

  it('splits words as a shell does', () => {
    expect(splitWords(`a 'b c' "d \\"e\\"" f\\ g '' x"y"z`)).toEqual(['a', 'b c', 'd "e"', 'f g', '', 'xyz']);
    expect(splitWords("  ")).toEqual([]);
  });
});
