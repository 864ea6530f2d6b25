#!/usr/bin/env node
// Writes the probe groups' part of helm/flowtel/values.schema.json from the
// registry (after `tsc`; `npm run build` runs it). CI fails when the
// committed file differs from what the build writes.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const { PROBE_GROUPS } = require(path.join(root, 'dist/src/probes/registry'));
const { probesChartSchema } = require(path.join(root, 'dist/src/config/chart-schema'));

const file = path.join(root, 'helm/flowtel/values.schema.json');
const schema = JSON.parse(fs.readFileSync(file, 'utf8'));
schema.properties.config.properties.probes = probesChartSchema(PROBE_GROUPS);
const text = `${JSON.stringify(schema, null, 2)}\n`;
if (fs.readFileSync(file, 'utf8') !== text) {
  fs.writeFileSync(file, text);
  process.stdout.write(`chart-schema: wrote config.probes of ${path.relative(root, file)} from the probe-group registry\n`);
}
