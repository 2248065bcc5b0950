import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { allDocKeyPaths, renderConfigDoc } from '../../../src/config/doc.js';

const docFile = fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url));

describe('docs/configuration.md', () => {
  const doc = readFileSync(docFile, 'utf8');

  test('names every key of the schema', () => {
    const paths = allDocKeyPaths();
    assert.ok(paths.length > 150, `only ${paths.length} key paths found in the schema`);
    const missing = paths.filter((p) => !doc.includes(`\`${p}\``));
    assert.deepEqual(missing, [], 'keys missing from docs/configuration.md: run `npx tsx scripts/gen-config-doc.ts`');
  });

  test('gives every key a meaning', () => {
    const undescribed = doc
      .split('\n')
      .filter((l) => /^\| `[^`]+` \|/.test(l))
      .filter((l) => l.trimEnd().endsWith('|  |'));
    assert.deepEqual(undescribed, [], 'add describe() texts in src/config/schema.ts');
  });

  test('is current with the schema', () => {
    assert.equal(doc, renderConfigDoc(), 'docs/configuration.md is stale: run `npx tsx scripts/gen-config-doc.ts`');
  });
});
