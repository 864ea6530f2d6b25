/** The benchmarks' statistics: the median's confidence interval from order statistics. */
import assert from 'node:assert/strict';
import { medianInterval } from '../../bench/report';

describe('bench: median confidence interval', () => {
  it('takes the order statistics a binomial table gives', () => {
    const values = Array.from({ length: 15 }, (_, i) => 15 - i); // 15 .. 1, unsorted on purpose
    // n = 15: P(X <= 3) = 0.0176 <= 0.025 < P(X <= 4) = 0.059, so the 4th smallest and the 4th largest (96.5%).
    assert.deepEqual(medianInterval(values), { low: 4, high: 12 });
    // n = 6: P(X <= 0) = 0.0156: the smallest and the largest (96.9%); n = 5 has no 95% interval.
    assert.deepEqual(medianInterval([6, 1, 5, 2, 4, 3]), { low: 1, high: 6 });
    assert.equal(medianInterval([1, 2, 3, 4, 5]), undefined);
    // n = 30: k = 10 (P(X <= 9) = 0.0214).
    assert.deepEqual(medianInterval(Array.from({ length: 30 }, (_, i) => i + 1)), { low: 10, high: 21 });
  });
});
