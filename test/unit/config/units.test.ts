import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDuration, formatSize, parseDuration, parseSize, UNLIMITED } from '../../../src/model/index.js';

const MB = 1024 * 1024;

describe('sizes as administrators write them', () => {
  const cases: [unknown, number | undefined][] = [
    [0, 0],
    [37748736, 37748736],
    ['36MB', 36 * MB],
    ['36 MB', 36 * MB],
    ['36mb', 36 * MB],
    ['512KB', 512 * 1024],
    ['1.5GB', 1.5 * 1024 * MB],
    ['100B', 100],
    ['4096', 4096],
    ['1TB', 1024 ** 4],
    ['unlimited', UNLIMITED],
    ['Unlimited', UNLIMITED],
    ['36 MB (37,748,736 bytes)', 37748736],
    ['256 KB (262,144 bytes)', 262144],
    ['36 MiB', undefined],
    ['12XB', undefined],
    ['MB', undefined],
    ['', undefined],
    [-1, undefined],
    [1.5, undefined],
    [true, undefined],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input)} is ${want === undefined ? 'refused' : want}`, () => assert.equal(parseSize(input), want));
  }

  test('formatting gives the largest whole unit, and plain bytes otherwise', () => {
    assert.equal(formatSize(36 * MB), '36MB');
    assert.equal(formatSize(256 * 1024), '256KB');
    assert.equal(formatSize(1024 * MB), '1GB');
    assert.equal(formatSize(1000), '1000');
    assert.equal(formatSize(UNLIMITED), 'unlimited');
    for (const n of [1, 1023, 1025, 36 * MB, 35 * MB + 1, 10 * 1024 ** 4]) assert.equal(parseSize(formatSize(n)), n);
  });
});

describe('durations as administrators write them', () => {
  const cases: [unknown, number | undefined][] = [
    ['30s', 30_000],
    ['5m', 300_000],
    ['4h', 4 * 3_600_000],
    ['2d', 2 * 86_400_000],
    ['1w', 7 * 86_400_000],
    ['500ms', 500],
    ['1h30m', 90 * 60_000],
    ['00:05:00', 300_000],
    ['1.02:03:04', ((24 + 2) * 60 + 3) * 60_000 + 4000],
    ['2.00:00:00', 2 * 86_400_000],
    ['00:00:01.5', 1500],
    [45, 45_000],
    [0, 0],
    ['unlimited', UNLIMITED],
    ['00:61:00', undefined],
    ['00:00:60', undefined],
    ['two days', undefined],
    ['5', undefined],
    ['1x', undefined],
    [-5, undefined],
    [false, undefined],
  ];
  for (const [input, want] of cases) {
    test(`${JSON.stringify(input)} is ${want === undefined ? 'refused' : `${want} ms`}`, () => assert.equal(parseDuration(input), want));
  }

  test('formatting is compact and parses back to the same value', () => {
    assert.equal(formatDuration(300_000), '5m');
    assert.equal(formatDuration(2 * 86_400_000), '2d');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(UNLIMITED), 'unlimited');
    for (const ms of [1, 999, 1000, 61_000, 93_784_000, 2 * 86_400_000 + 1]) assert.equal(parseDuration(formatDuration(ms)), ms);
  });
});
