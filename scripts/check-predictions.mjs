#!/usr/bin/env node
// CI acceptance check: predictions (from `leads predict`) against the validator's labels.
// Usage: node scripts/check-predictions.mjs predictions.csv y_test.csv [--min-accuracy 0.75]
// Requires the first five predictions to be exactly 0,1,0,1,0 (the course validator's rule).
import fs from 'node:fs';

const [predFile, labelFile, ...rest] = process.argv.slice(2);
const minAcc = rest[0] === '--min-accuracy' ? Number(rest[1]) : 0.75;
if (!predFile || !labelFile || !(minAcc >= 0 && minAcc <= 1)) {
  console.error('usage: check-predictions.mjs predictions.csv y_test.csv [--min-accuracy 0.75]');
  process.exit(2);
}
const column = (file, name) => {
  const [header, ...rows] = fs.readFileSync(file, 'utf8').trim().split(/\r?\n/);
  const i = header.split(',').indexOf(name);
  if (i < 0) {
    console.error(`${file}: no '${name}' column (found: ${header})`);
    process.exit(2);
  }
  return rows.map((r) => Number(r.split(',')[i]));
};
const pred = column(predFile, 'prediction');
const truth = column(labelFile, 'lead_indicator');
if (pred.length !== truth.length) {
  console.error(`${pred.length} predictions for ${truth.length} labels`);
  process.exit(1);
}
const firstFive = pred.slice(0, 5).join(',');
const acc = pred.filter((p, i) => p === truth[i]).length / pred.length;
console.log(`first five: [${firstFive}] (required [0,1,0,1,0]); accuracy ${acc.toFixed(3)} on ${pred.length} rows (required ≥ ${minAcc})`);
process.exit(firstFive === '0,1,0,1,0' && acc >= minAcc ? 0 : 1);
