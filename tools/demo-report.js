#!/usr/bin/env node
// tools/demo-report.js REPORT.json [SECONDS]: what a reviewer reads after `vigild run`: the
// alerts (subject, distance, time, evidence), what each camera saw, and the transparency figures
// the public record asks for. Reads the report only; needs no node modules.
'use strict';
const fs = require('fs');

const [file, secondsArg] = process.argv.slice(2);
const r = JSON.parse(fs.readFileSync(file, 'utf8'));
const seconds = Number(secondsArg || 0);
const t = r.totals;

for (const c of r.cameras) {
  console.log(`${c.id}: ${c.codec} ${c.width}x${c.height}, ${c.rtp_packets} RTP packets (${c.rtp_lost} lost), ` +
    `${c.frames_decoded} frames decoded, ${c.frames_analysed} analysed, ${c.faces_detected} faces ` +
    `(${c.faces_gated} below the quality gate), ${c.tracks} people tracked, ${c.faces_matched} matching sightings`);
}
console.log(`\nALERTS for review (${r.alerts.length}): each waits for an officer's decision`);
for (const a of r.alerts) {
  console.log(`  ${a.id.padEnd(4)} ${a.camera} t=${(a.pts / 90000).toFixed(1)} s  track ${a.track}  ` +
    `${a.subject.padEnd(10)} ${a.metric} ${a.value.toFixed(3)}  box ${a.box.join(',')}  evidence ${a.evidence || 'NOT SAVED'}`);
}
const an = r.stages.analysis || {};
console.log(`\nTRANSPARENCY: ${t.faces_scanned} faces scanned, ${t.alerts} alerts, ` +
  `${t.evidence_bytes} bytes of evidence kept (matched crops only, encrypted); every other face's ` +
  'biometric data was zeroed as its frame retired.');
if (an.enabled) {
  const lat = an.latency_ms || {};
  console.log(`Analysis: ${an.frames_sampled} frames sampled at the analysis rate, ${an.frames_dropped} dropped ` +
    `(${an.mode}, ${an.queue_depth} queued per camera at most), frame to result p50 ${(lat.p50 || 0).toFixed(0)} ms, ` +
    `p99 ${(lat.p99 || 0).toFixed(0)} ms.`);
}
if (seconds) {
  console.log(`Speed: ${seconds.toFixed(1)} s for the run, ${(t.faces_scanned / seconds).toFixed(0)} faces/s, ` +
    `${(an.seconds || 0).toFixed(1)} s of it in the face nets.`);
}
