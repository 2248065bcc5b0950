/**
 * Back pressure through the real daemon on a real file system: the spool lives on a small tmpfs
 * (mounting one needs root, which CI has). Filling the disk makes MAIL FROM answer 452 4.3.1 and the
 * level shows in the log, /backpressure and /metrics; freeing it brings mail back in.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, statfsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonProcess, freePort, maildirDaemonConfig, tempDir, writeConfig } from '../../helpers/daemon.js';
import { LineClient } from '../../helpers/smtp-client.js';

const tmp = tempDir();
const mnt = join(tmp.path, 'spoolfs');
let mounted = false;
let daemon: DaemonProcess | undefined;
after(() => {
  daemon?.kill();
  if (mounted) spawnSync('umount', ['-l', mnt]);
  tmp.cleanup();
});

const MB = 1024 * 1024;

async function tryMessage(port: number): Promise<string> {
  const c = await LineClient.connect(port);
  try {
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    const mail = await c.cmd('MAIL FROM:<sender@elsewhere.example>');
    if (mail.code !== 250) return mail.raw;
    assert.equal((await c.cmd('RCPT TO:<carol@pressure.example>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    return (await c.cmd('Subject: pressure\r\n\r\nhello\r\n.')).raw;
  } finally {
    c.close();
  }
}

test('a full spool disk refuses new mail with 452 4.3.1 until space comes back', async (t) => {
  mkdirSync(mnt, { recursive: true });
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mnt]).status !== 0) {
    t.skip('cannot mount a small tmpfs here (not root)');
    return;
  }
  mounted = true;
  const port = await freePort();
  const file = writeConfig(
    tmp.path,
    maildirDaemonConfig({
      name: 'BP01',
      domain: 'pressure.example',
      port,
      dataDir: `${mnt}/data`,
      logDir: `${tmp.path}/log`,
      mailRoot: `${tmp.path}/mail`,
      extra: 'transportService:\n  backPressure: { minimumFreeDiskSpace: 4MB, checkInterval: 100ms }\n',
    }),
  );
  daemon = new DaemonProcess(file);
  const started = await daemon.waitForLog((l) => l.code === 'STARTED');
  const admin = (started.listeners as string[]).find((l) => l.startsWith('admin '))!.slice('admin '.length);
  assert.match(await tryMessage(port), /^250 2\.6\.0 /);

  // Leave 3 MB free: below the 4 MB minimum, so High.
  const filler = join(mnt, 'filler');
  const free = () => {
    const s = statfsSync(mnt);
    return s.bavail * s.bsize;
  };
  // One fallocate takes the space in a single step; a write of ~20 MB takes long enough for the
  // 100 ms check to see the disk half full first (Medium on the way to High).
  const fill = spawnSync('fallocate', ['-l', String(free() - 3 * MB), filler], { encoding: 'utf8' });
  assert.equal(fill.status, 0, `fallocate failed: ${fill.stderr}`);
  const high = await daemon.waitForLog((l) => l.event === 'backpressure' && l.level === 'High', 10000);
  // The daemon's own files may give back or take a little of the space meanwhile: 2 or 3 MB.
  assert.match(high.msg, /back pressure Normal -> High \(DiskSpace High: [23] MB free on the spool's file system \(Medium below 8 MB, High below 4 MB\)/);
  assert.equal(await tryMessage(port), '452 4.3.1 Insufficient system resources');
  const state = (await (await fetch(`http://${admin}/backpressure`)).json()) as { level: string; resources: { resource: string; level: string }[] };
  assert.equal(state.level, 'High');
  assert.deepEqual(state.resources.find((r) => r.resource === 'DiskSpace')?.level, 'High');
  assert.match(await (await fetch(`http://${admin}/metrics`)).text(), /^mailyard_back_pressure_level 2$/m);

  // Space back: Normal again (above 2.5 x the minimum), and mail is taken.
  unlinkSync(filler);
  await daemon.waitForLog((l) => l.event === 'backpressure' && l.level === 'Normal', 10000);
  assert.match(await tryMessage(port), /^250 2\.6\.0 /);

  daemon.signal('SIGTERM');
  assert.equal(await daemon.exitCode(), 0);
});
