/**
 * Operating points and error rates, checked against independent computations: the binomial bound against its closed
 * form, published table values and a direct sum; the threshold against a brute-force scan of every cut; the ROC area
 * against counting every (spam, ham) pair.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import seedrandom from 'seedrandom';
import { allowedErrors, binomialCdf, chooseOperatingPoint, rocCurve, upperConfidenceBound, type ScoredExample } from '../../model/calibration.ts';

/** P(X ≤ k) for X ~ Binomial(n, p) by multiplying terms directly (no logs), for small n. */
function directCdf(k: number, n: number, p: number): number {
  let sum = 0;
  for (let i = 0; i <= k; i++) {
    let c = 1;
    for (let j = 1; j <= i; j++) c = (c * (n - i + j)) / j;
    sum += c * p ** i * (1 - p) ** (n - i);
  }
  return sum;
}

test('the upper confidence bound matches the closed form at k = 0, published values, and a direct binomial sum', () => {
  for (const n of [1, 10, 150, 598, 1000, 5000]) {
    assert.ok(Math.abs(upperConfidenceBound(0, n, 0.95) - (1 - 0.05 ** (1 / n))) < 1e-12, `n=${n}`);
  }
  // One-sided 95% Clopper–Pearson upper limits as tabulated (e.g. Conover, Practical Nonparametric Statistics).
  assert.ok(Math.abs(upperConfidenceBound(1, 100, 0.95) - 0.0466) < 1e-4);
  assert.ok(Math.abs(upperConfidenceBound(1, 20, 0.95) - 0.2161) < 1e-4);
  assert.ok(Math.abs(upperConfidenceBound(2, 10, 0.95) - 0.5069) < 1e-4);
  for (const [k, n] of [[1, 30], [3, 50], [5, 120], [10, 160]] as const) {
    const u = upperConfidenceBound(k, n, 0.9);
    assert.ok(Math.abs(directCdf(k, n, u) - 0.1) < 1e-9, `CDF(${k}; ${n}, ${u}) = ${directCdf(k, n, u)}`);
    assert.ok(Math.abs(binomialCdf(k, n, 0.05) - directCdf(k, n, 0.05)) < 1e-12);
  }
  assert.equal(upperConfidenceBound(7, 7, 0.95), 1);
  assert.equal(upperConfidenceBound(0, 0, 0.95), 1);
});

test('allowed errors: the most flagged ham whose bound stays within the target (0.5% at 95%: none below 598 ham)', () => {
  assert.equal(allowedErrors(150, 0.005, 0.95), -1, 'the balanced split alone cannot show 0.5%');
  assert.equal(allowedErrors(597, 0.005, 0.95), -1);
  assert.equal(allowedErrors(598, 0.005, 0.95), 0);
  for (const n of [700, 1500, 3000]) {
    const k = allowedErrors(n, 0.005, 0.95);
    assert.ok(upperConfidenceBound(k, n, 0.95) <= 0.005 && upperConfidenceBound(k + 1, n, 0.95) > 0.005, `n=${n} k=${k}`);
  }
});

/** Held-out scores from two overlapping normal distributions, with some ties. */
function sample(nHam: number, nSpam: number, seed: string): ScoredExample[] {
  const rng = seedrandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  const round = (x: number) => Math.round(x * 20) / 20; // ties, as float32 model outputs have
  return [
    ...Array.from({ length: nHam }, () => ({ score: round(normal() * 2 - 4), spam: false })),
    ...Array.from({ length: nSpam }, () => ({ score: round(normal() * 2 + 3), spam: true })),
  ];
}

test('the chosen spam threshold is the lowest cut whose held-out ham loss bound is within the target (brute force over every cut)', () => {
  for (const [nHam, nSpam, seed] of [[900, 130, 'a'], [3000, 600, 'b'], [650, 40, 'c']] as const) {
    const examples = sample(nHam, nSpam, seed);
    const op = chooseOperatingPoint(examples, { targetHamLoss: 0.005, confidence: 0.95, reviewHamShare: 0.02 });
    // Brute force: cuts at every distinct score (spam iff score >= cut), lowest first.
    const cuts = [...new Set(examples.map((e) => e.score))].sort((a, b) => a - b);
    const feasible = cuts.find((t) => upperConfidenceBound(examples.filter((e) => !e.spam && e.score >= t).length, nHam, 0.95) <= 0.005);
    assert.ok(feasible !== undefined && op.spamThreshold !== null);
    const flagged = (t: number) => examples.filter((e) => !e.spam && e.score >= t).length;
    const caught = (t: number) => examples.filter((e) => e.spam && e.score >= t).length;
    // The same held-out outcome as the lowest feasible cut, and no observed score between them.
    assert.equal(op.hamFlagged, flagged(feasible));
    assert.equal(op.spamCaught, caught(feasible));
    assert.equal(flagged(op.spamThreshold), flagged(feasible));
    assert.equal(caught(op.spamThreshold), caught(feasible));
    const below = cuts.filter((t) => t < feasible);
    assert.ok(below.length === 0 || op.spamThreshold > below[below.length - 1]!, 'not below the next lower score');
    assert.ok(op.hamLossBound <= 0.005);
    assert.equal(op.hamLoss, flagged(feasible) / nHam);
    assert.equal(op.spamMissed, (nSpam - caught(feasible)) / nSpam);
    // The uncertain band below it holds about 2% of the ham.
    assert.ok(op.hamThreshold <= op.spamThreshold);
    const inBandOrAbove = examples.filter((e) => !e.spam && e.score >= op.hamThreshold).length;
    assert.ok(inBandOrAbove <= Math.floor(0.02 * nHam), `${inBandOrAbove} ham at or above the ham threshold`);
    const band = (spam: boolean) => examples.filter((e) => e.spam === spam && e.score >= op.hamThreshold && e.score < op.spamThreshold!).length;
    assert.deepEqual([op.hamUncertain, op.spamUncertain], [band(false), band(true)]);
  }
});

test('too few held-out ham: no spam threshold at all', () => {
  const op = chooseOperatingPoint(sample(300, 300, 'd'), { targetHamLoss: 0.005, confidence: 0.95, reviewHamShare: 0.02 });
  assert.equal(op.spamThreshold, null);
  assert.equal(op.hamFlagged, 0);
  assert.equal(op.spamCaught, 0);
  assert.equal(op.hamLossBound, 1);
});

test('1-ROCA% equals counting every (spam, ham) pair, ties counting half; ROC points are real cuts', () => {
  const examples = sample(400, 150, 'e');
  const ham = examples.filter((e) => !e.spam).map((e) => e.score);
  const spam = examples.filter((e) => e.spam).map((e) => e.score);
  let wins = 0;
  for (const s of spam) for (const h of ham) wins += s > h ? 1 : s === h ? 0.5 : 0;
  const expected = 100 * (1 - wins / (ham.length * spam.length));
  const op = chooseOperatingPoint(examples, { targetHamLoss: 0.005, confidence: 0.95, reviewHamShare: 0.02 });
  assert.ok(Math.abs(op.oneMinusRocaPercent - expected) < 1e-9, `${op.oneMinusRocaPercent} vs ${expected}`);
  assert.ok(expected > 0, 'the sample overlaps, so the check is not trivial');

  const cuts = [Infinity, ...[...new Set(examples.map((e) => e.score))].sort((a, b) => b - a)];
  const real = new Set(cuts.map((t) => `${ham.filter((h) => h >= t).length / ham.length}|${spam.filter((s) => s >= t).length / spam.length}`));
  const roc = rocCurve(examples, 50);
  assert.ok(roc.length <= 50);
  assert.deepEqual(roc[0], { hamLoss: 0, spamCaught: 0 });
  assert.deepEqual(roc[roc.length - 1], { hamLoss: 1, spamCaught: 1 });
  for (const p of roc) assert.ok(real.has(`${p.hamLoss}|${p.spamCaught}`), JSON.stringify(p));
});
