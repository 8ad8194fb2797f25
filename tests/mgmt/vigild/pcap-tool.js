#!/usr/bin/env node
// pcap-tool.js: rewrites a camera capture (classic pcap, Ethernet, IPv4/UDP) for the end-to-end
// tests, so that they can make what no real sender makes on demand:
//
//   node pcap-tool.js port IN OUT PORT
//       every UDP datagram to the capture's camera port goes to PORT instead (a second camera)
//   node pcap-tool.js garbage IN OUT EVERY
//       after every EVERY-th packet, one bad packet, taking eight kinds in turn; prints what was
//       injected as JSON, by the report counter that must count it:
//       {"rx_malformed":N,"not_udp":N,"ip_fragments":N,"unknown_flow":N,"rtp_malformed":N}
//   node pcap-tool.js from IN OUT SECONDS
//       the camera's datagrams from SECONDS of RTP time on (a whole second: the recording has a key
//       frame every 2 s, so an even one starts on a key frame), everything else as it is
//
// The camera port and SSRC are the first UDP datagram's. Deterministic: no randomness.
'use strict';
const fs = require('fs');

function readPcap(path) {
  const b = fs.readFileSync(path);
  if (b.readUInt32LE(0) !== 0xa1b2c3d4 || b.readUInt32LE(20) !== 1)
    throw new Error(`${path}: not a little-endian microsecond pcap of Ethernet frames`);
  const recs = [];
  for (let off = 24; off + 16 <= b.length;) {
    const len = b.readUInt32LE(off + 8);
    recs.push({ hdr: Buffer.from(b.subarray(off, off + 16)), data: Buffer.from(b.subarray(off + 16, off + 16 + len)) });
    off += 16 + len;
  }
  return { header: b.subarray(0, 24), recs };
}

function writePcap(path, header, recs) {
  const parts = [header];
  for (const r of recs) {
    r.hdr.writeUInt32LE(r.data.length, 8);
    r.hdr.writeUInt32LE(r.data.length, 12);
    parts.push(r.hdr, r.data);
  }
  fs.writeFileSync(path, Buffer.concat(parts));
}

// Where the UDP header starts in an untagged IPv4 frame, or -1.
function udpOffset(d) {
  if (d.length < 42 || d.readUInt16BE(12) !== 0x0800 || d[23] !== 17) return -1;
  return 14 + (d[14] & 15) * 4;
}

function ipChecksum(d) {
  d.writeUInt16BE(0, 24);
  let sum = 0;
  const ihl = (d[14] & 15) * 4;
  for (let i = 14; i < 14 + ihl; i += 2) sum += d.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  d.writeUInt16BE(~sum & 0xffff, 24);
}

// A copy of TEMPLATE (a camera datagram) carrying PAYLOAD to DPORT, lengths and checksum mended.
function udpLike(template, payload, dport) {
  const u = udpOffset(template);
  const d = Buffer.concat([template.subarray(0, u + 8), payload]);
  d.writeUInt16BE(d.length - 14, 16);
  d.writeUInt16BE(dport, u + 2);
  d.writeUInt16BE(8 + payload.length, u + 4);
  d.writeUInt16BE(0, u + 6); // no UDP checksum (allowed on IPv4)
  ipChecksum(d);
  return d;
}

function cameraOf(recs) {
  for (const r of recs) {
    const u = udpOffset(r.data);
    if (u > 0) return { port: r.data.readUInt16BE(u + 2), ssrc: r.data.readUInt32BE(u + 16), template: r.data, u };
  }
  throw new Error('no UDP datagram in the capture');
}

function rewritePort(recs, port) {
  const cam = cameraOf(recs);
  for (const r of recs) {
    const u = udpOffset(r.data);
    if (u > 0 && r.data.readUInt16BE(u + 2) === cam.port) {
      r.data.writeUInt16BE(port, u + 2);
      r.data.writeUInt16BE(0, u + 6);
    }
  }
}

function injectGarbage(recs, every) {
  const cam = cameraOf(recs);
  const t = cam.template;
  const rtp = (pt) => {
    const h = Buffer.alloc(12 + 40, 0x5a);
    h[0] = 0x80;
    h[1] = pt;
    h.writeUInt16BE(0, 2);
    h.writeUInt32BE(0, 4);
    h.writeUInt32BE(cam.ssrc, 8);
    return h;
  };
  const kinds = [
    ['rx_malformed', () => Buffer.from(t.subarray(0, 10))], // a frame cut short
    ['rx_malformed', () => { const d = Buffer.from(t); d[14] = 0x43; return d; }], // IPv4 header length 12
    ['rtp_malformed', () => { const p = rtp(96); p[0] = 0x00; return udpLike(t, p, cam.port); }], // RTP version 0
    ['rtp_malformed', () => udpLike(t, Buffer.from([0x80, 96, 0]), cam.port)], // 3 bytes of RTP
    ['rtp_malformed', () => udpLike(t, rtp(97), cam.port)], // the camera's SSRC, a payload type it never sends
    ['unknown_flow', () => udpLike(t, rtp(96), 9)], // to a port that is no camera's
    ['not_udp', () => { const d = Buffer.alloc(60); t.copy(d, 0, 0, 12); d.writeUInt16BE(0x0806, 12); return d; }], // ARP
    ['ip_fragments', () => { const d = udpLike(t, rtp(96), cam.port); d.writeUInt16BE(0x2000, 20); ipChecksum(d); return d; }],
  ];
  const counts = { rx_malformed: 0, not_udp: 0, ip_fragments: 0, unknown_flow: 0, rtp_malformed: 0 };
  const out = [];
  let k = 0;
  recs.forEach((r, i) => {
    out.push(r);
    if ((i + 1) % every) return;
    const [counter, make] = kinds[k++ % kinds.length];
    out.push({ hdr: Buffer.from(r.hdr), data: make() });
    counts[counter]++;
  });
  return { out, counts };
}

// The camera's datagrams whose RTP timestamp is SECONDS or more past its first (90 kHz), and the rest.
function fromSeconds(recs, seconds) {
  const cam = cameraOf(recs);
  const t0 = cam.template.readUInt32BE(cam.u + 12);
  return recs.filter((r) => {
    const u = udpOffset(r.data);
    if (u < 0 || r.data.readUInt16BE(u + 2) !== cam.port) return true;
    return ((r.data.readUInt32BE(u + 12) - t0) >>> 0) >= seconds * 90000;
  });
}

const [verb, inPath, outPath, arg] = process.argv.slice(2);
const n = Number(arg);
if (!['port', 'garbage', 'from'].includes(verb) || !outPath || !Number.isInteger(n) || n < 1 || n > 65535) {
  process.stderr.write('usage: pcap-tool.js port|garbage|from IN OUT N\n');
  process.exit(2);
}
const cap = readPcap(inPath);
if (verb === 'from') {
  writePcap(outPath, cap.header, fromSeconds(cap.recs, n));
} else if (verb === 'port') {
  rewritePort(cap.recs, n);
  writePcap(outPath, cap.header, cap.recs);
} else {
  const { out, counts } = injectGarbage(cap.recs, n);
  writePcap(outPath, cap.header, out);
  console.log(JSON.stringify(counts));
}
