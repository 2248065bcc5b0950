/** Deterministic test data, so a failing case can be reproduced. */

/** n bytes covering every value (NUL, CR, LF, >= 0x80 included) from a linear congruential sequence. */
export function binary(n: number, seed = 0x9e3779b9): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
