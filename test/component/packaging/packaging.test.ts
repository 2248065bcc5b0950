// The packaging files keep their promises: the README's quick start has exactly the two command
// lines, `.ci/run` runs that same test command after installing the interop peers, `npm test`
// includes the lint (the module boundaries), the container runs as non-root with data and log
// volumes, and the systemd unit has its user, capability, reload and directories (and passes
// `systemd-analyze verify` where that tool exists).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../helpers/daemon.js';
import { findProgram } from '../../helpers/peers.js';

const read = (p: string): Promise<string> => readFile(join(repoRoot, p), 'utf8');

describe('packaging', () => {
  test('the README quick start has exactly two command lines: run the daemon, run the tests', async () => {
    const readme = await read('README.md');
    const quick = /## Quick start\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
    const commands = [...quick.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => (m[1] ?? '').split('\n').filter((l) => l.trim() !== ''));
    assert.equal(commands.length, 2, commands.join('\n'));
    assert.match(commands[0] ?? '', /^npm ci && npm (start|run \S+)/);
    assert.match(commands[1] ?? '', /^npm ci && npm (test|run \S+)$/);
  });

  test('.ci/run installs the interop peers, then runs npm ci and exactly the README test command', async () => {
    const ci = await read('.ci/run');
    assert.match(ci, /^set -euo pipefail$/m);
    for (const pkg of ['postfix', 'dovecot-core', 'dovecot-imapd', 'dovecot-lmtpd', 'swaks', 'dnsmasq-base', 'openssl']) {
      assert.match(ci, new RegExp(`^\\s+${pkg}\\b`, 'm'), `${pkg} is installed by .ci/run`);
    }
    assert.match(ci, /postfix\/main_mailer_type select No configuration/);
    const readme = await read('README.md');
    const quick = /## Quick start\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
    const testCommand = /npm ci && (npm (?:test|run \S+))\n/.exec(quick)?.[1];
    assert.ok(testCommand, 'the README names a test command');
    const lines = ci.split('\n').map((l) => l.trim()).filter((l) => /^npm /.test(l));
    assert.deepEqual(lines, ['npm ci --no-audit --no-fund', testCommand]);
  });

  test('npm test runs the type check and the linter (with the boundary rule) before the tests', async () => {
    const pkg = JSON.parse(await read('package.json')) as { scripts: Record<string, string> };
    assert.match(pkg.scripts.test ?? '', /npm run typecheck && npm run lint && /);
    assert.match(await read('eslint.config.js'), /'mailyard\/boundaries': 'error'/);
  });

  test('the container image runs as the non-root user mailyard with volumes for data and logs', async () => {
    const docker = await read('Dockerfile');
    const finalStage = docker.slice(docker.lastIndexOf('\nFROM '));
    assert.match(finalStage, /^USER mailyard$/m);
    assert.match(finalStage, /^VOLUME \["\/var\/lib\/mailyard", "\/var\/log\/mailyard"\]$/m);
    assert.match(finalStage, /^EXPOSE 25 587 465 2525 717$/m);
    assert.match(finalStage, /^ENTRYPOINT \["node", "bin\/mailyard\.js"\]$/m);
    assert.match(finalStage, /^CMD \["start", "--config", "\/etc\/mailyard\/mailyard\.yaml"\]$/m);
    assert.match(finalStage, /npm ci --omit=dev/);
  });

  test('the systemd unit runs as mailyard with only CAP_NET_BIND_SERVICE, reloads on HUP and owns its directories', async (t) => {
    const unit = await read('config/mailyard.service');
    for (const line of [
      'Type=simple',
      'User=mailyard',
      'AmbientCapabilities=CAP_NET_BIND_SERVICE',
      'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
      'NoNewPrivileges=true',
      'ExecStart=/usr/bin/mailyard start --config /etc/mailyard/mailyard.yaml',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'KillSignal=SIGTERM',
      'Restart=on-failure',
      'StateDirectory=mailyard',
      'LogsDirectory=mailyard',
      'ConfigurationDirectory=mailyard',
      'ProtectSystem=strict',
      'ReadWritePaths=/var/lib/mailyard /var/log/mailyard',
    ]) {
      assert.ok(unit.split('\n').includes(line), `unit has ${line}`);
    }
    const analyze = findProgram('systemd-analyze');
    if (!analyze) {
      t.diagnostic('systemd-analyze not installed: the unit file was checked by content only');
      return;
    }
    // verify with the binary path replaced, since /usr/bin/mailyard is not installed here
    const dir = await mkdtemp(join(tmpdir(), 'mailyard-unit-'));
    try {
      const file = join(dir, 'mailyard.service');
      await writeFile(file, unit.replaceAll('/usr/bin/mailyard', '/bin/true'));
      const r = spawnSync(analyze, ['verify', file], { encoding: 'utf8', timeout: 20_000 });
      const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('mailyard.service'));
      assert.deepEqual(complaints, [], 'systemd-analyze verify has no complaint about the unit');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
