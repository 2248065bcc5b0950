/**
 * The catalogue of broken configurations: test/fixtures/configs/invalid/NN-name/ holds a
 * mailyard.yaml and an expected.txt whose lines are "LINE:COL: message" substrings that must all
 * appear in what `config check` prints for it, positions included.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatIssue, parseConfigText } from '../../../src/config/index.js';

const dir = fileURLToPath(new URL('../../fixtures/configs/invalid/', import.meta.url));
const cases = readdirSync(dir).filter((d) => /^\d\d-/.test(d)).sort();

describe('invalid configurations are refused with FILE:LINE:COL messages', () => {
  test('the catalogue is there', () => assert.ok(cases.length >= 40, `only ${cases.length} cases`));

  for (const name of cases) {
    test(name, () => {
      const text = readFileSync(`${dir}${name}/mailyard.yaml`, 'utf8');
      const expected = readFileSync(`${dir}${name}/expected.txt`, 'utf8').split('\n').filter((l) => l.trim() !== '');
      assert.ok(expected.length > 0, 'expected.txt is empty');
      const r = parseConfigText(text, 'mailyard.yaml');
      assert.equal(r.ok, false, 'the configuration was accepted');
      if (r.ok) return;
      const output = r.issues.map(formatIssue).join('\n');
      for (const want of expected) assert.ok(output.includes(`mailyard.yaml:${want}`), `missing: mailyard.yaml:${want}\n--- got:\n${output}`);
      assert.doesNotMatch(output, /\n\s+at /, 'a stack trace leaked into the output');
      for (const line of output.split('\n')) assert.match(line, /^mailyard\.yaml:\d+:\d+: \S/);
    });
  }
});
