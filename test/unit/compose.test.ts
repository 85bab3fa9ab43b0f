/**
 * docker-compose.temporal.yml cannot be run here (no image registry), so its syntax and intent are
 * checked: a valid compose document, pinned images, loopback-only ports, a persistent database volume,
 * health-gated start-up, and every evalflow search attribute registered.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { packageRoot } from '../../common/paths.js';
import { SEARCH_ATTRIBUTES } from '../../workflows/types.js';

const ServiceSchema = z
  .object({
    image: z.string().regex(/^[\w./-]+:[\w.-]+$/),
    environment: z.record(z.string(), z.string()).optional(),
    ports: z.array(z.string().regex(/^127\.0\.0\.1:\d+:\d+$/)).optional(),
    volumes: z.array(z.string()).optional(),
    depends_on: z.record(z.string(), z.object({ condition: z.enum(['service_healthy', 'service_started', 'service_completed_successfully']) })).optional(),
    healthcheck: z.object({ test: z.array(z.string()).min(2), interval: z.string(), timeout: z.string(), retries: z.number().int() }).optional(),
    entrypoint: z.array(z.string()).optional(),
    command: z.array(z.string()).optional(),
    restart: z.enum(['no', 'always', 'unless-stopped', 'on-failure']),
  })
  .strict();
const ComposeSchema = z.object({ name: z.string(), services: z.record(z.string(), ServiceSchema), volumes: z.record(z.string(), z.null()) }).strict();

describe('docker-compose.temporal.yml', () => {
  const compose = ComposeSchema.parse(parse(readFileSync(join(packageRoot(), 'docker-compose.temporal.yml'), 'utf8')));

  it('pins every image (no latest) and binds ports to loopback only', () => {
    for (const [name, svc] of Object.entries(compose.services)) expect(svc.image, name).not.toMatch(/:latest$/);
    expect(compose.services.temporal?.ports).toEqual(['127.0.0.1:7233:7233']);
    expect(compose.services['temporal-ui']?.ports).toEqual(['127.0.0.1:8080:8080']);
  });

  it('keeps the database in a named volume and starts services only when their dependencies are healthy', () => {
    const volume = compose.services.postgresql?.volumes?.[0]?.split(':')[0] ?? '';
    expect(Object.keys(compose.volumes)).toContain(volume);
    for (const [name, svc] of Object.entries(compose.services)) {
      for (const [dep, { condition }] of Object.entries(svc.depends_on ?? {})) {
        expect(compose.services[dep], `${name} depends on unknown ${dep}`).toBeDefined();
        expect(compose.services[dep]?.healthcheck, `${dep} needs a healthcheck`).toBeDefined();
        expect(condition).toBe('service_healthy');
      }
    }
  });

  it('registers every evalflow search attribute as a Keyword', () => {
    const script = (compose.services['register-search-attributes']?.command ?? []).join(' ');
    for (const key of Object.values(SEARCH_ATTRIBUTES)) expect(script).toContain(key.name);
    expect(script).toContain('--type Keyword');
  });
});
