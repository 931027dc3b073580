"""Writes the head_dim-64 attention paths, shaders/attention_tiled_hd64.wgsl (everything from
`fn attention_hd64` on; the header comment above it stays), compiled as one module with
shaders/attention_tiled.wgsl: `python3 shaders/gen_attention_hd64.py` from the repository root.
WGSL has no unrolling and llvmpipe keeps loop-indexed private arrays in scratch memory, so
the rows live in named registers and the code is spelled out here (see the comment above
`fn attention_hd64` in the shader). R = 4 rows a thread: 8 compiled for minutes on lavapipe.
U = keys a loop step. The backward passes take 1 (`with_u`): their loop bodies hold each key's
(or query's) rows until the step's weights are known, and with 4 those beside the thread's own
rows made them the slowest kernels to build (a first packed backward on lavapipe 78 s, 68 s
with 1, and its median 43 → 27 ms: fewer live values, less spilling).
"""
import sys
N=16  # vec4s per row (head_dim 64)
R=4   # query rows per thread = key splits
S=R
NS=64//R   # query slots
U=4   # keys per iteration
C=512//(NS*N)  # splits merged per round (tile_a + tile_b)
H=C//2
def L(s, ind=1): return "    "*ind + s + "\n"

def pairwise(op, xs):
    """xs reduced in pairs, ((x0 op x1) op (x2 op x3)); op "max" or an infix operator."""
    while len(xs) > 1:
        ys = [f"max({a}, {b})" if op == "max" else f"({a} {op} {b})" for a, b in zip(xs[::2], xs[1::2])]
        xs = ys + xs[len(ys) * 2:]
    return xs[0]

def prologue(name):
    o = f"fn {name}(d: Dims, lid: u32, b: u32) {{\n"
    o += L("let blocks = (d.t + 63u) / 64u;")
    o += L("let h = b / blocks;")
    o += L(f"let slot = lid % {NS}u;")
    o += L(f"let split = lid / {NS}u;")
    o += L(f"let ib = (b % blocks) * 64u + slot;")
    o += L("let kvh = h / (d.heads / d.kv_heads);")
    for r in range(R):
        o += L(f"let live{r} = ib + {NS*r}u < d.t;")
        o += L(f"let i{r} = min(ib + {NS*r}u, d.t - 1u);")
        o += L(f"let rb{r} = (i{r} * d.heads + h) * {N}u;")
        o += L(f"let kr{r} = key_ranges(d, i{r});")
        o += L(f"let lows{r} = key_lows(d, kr{r});")
    fk = "0xffffffffu"; km = "0u"
    for r in range(R):
        fk = f"min({fk}, select(0xffffffffu, first_key(kr{r}, lows{r}), live{r}))"
        km = f"max({km}, select(0u, kr{r}.z, live{r}))"
    o += L(f"let kmax = workgroup_max(lid, {km});")
    o += L(f"let kmin = walk_start(d, lid, {fk});")
    o += L("let klast = max(kmax, 1u) - 1u;")
    # Packed rows (batched decoding, training): keys past every live row's prefix range and
    # before every live row's segment range (other segments) are seen by none; the walk jumps
    # over them, [g0, g0 + gap).
    gl = "0u"; gh = "0xffffffffu"
    for r in range(R):
        gl = f"max({gl}, select(0u, kr{r}.x, live{r}))"
        gh = f"min({gh}, select(0xffffffffu, lows{r}.y, live{r}))"
    o += L("var g0 = kmin;")
    o += L("var gap = 0u;")
    o += L("if (d.packed != 0u) {")
    o += L(f"g0 = max(kmin, workgroup_max(lid, {gl}));", 2)
    o += L(f"let g1 = min(kmax, ~workgroup_max(lid, ~{gh}));", 2)
    o += L("gap = select(0u, g1 - g0, g1 > g0);", 2)
    o += L("}")
    return o

def loads(var, buf, scale=""):
    o=""
    for r in range(R):
        for c in range(N):
            o += L(f"let {var}{r}_{c} = {buf}[rb{r} + {c}u]{scale};")
    return o

def loop_head():
    return L(f"for (var k = kmin + {U}u * split; k < kmax - gap; k += {U*S}u) {{")

def key_head(ind=2):
    o=""
    for u in range(U):
        o += L(f"let k{u} = k + {u}u + select(0u, gap, k + {u}u >= g0);", ind)
        o += L(f"let b{u} = (min(k{u}, klast) * d.kv_heads + kvh) * {N}u;", ind)
    for r in range(R):
        for u in range(U):
            o += L(f"let v{r}{u} = live{r} && sees(kr{r}, lows{r}, k{u});", ind)
    return o

def key_row(buf, name, u, c, lanes, ind):
    """vec4 c of key u's row in `buf`: loaded, or (lanes) broadcast from the lane that loaded it."""
    if not lanes:
        return L(f"let {name}k{u}_{c} = {buf}[b{u} + {c}u];", ind)
    o = ""
    if c % 8 == 0:
        o += L(f"let {name}l{u}_{c // 8} = {buf}[b{u} + {c}u + lane];", ind)
    return o + L(f"let {name}k{u}_{c} = lane8_broadcast({name}l{u}_{c // 8}, {c % 8}u);", ind)

def dots(x, buf, name, ind=2, lanes=False):
    o=""
    for r in range(R):
        for u in range(U):
            o += L(f"var {name}{r}{u}a = vec4<f32>(0.0);", ind)
    for c in range(N):
        for u in range(U):
            o += key_row(buf, name, u, c, lanes, ind)
        for r in range(R):
            for u in range(U):
                o += L(f"{name}{r}{u}a += {x}{r}_{c} * {name}k{u}_{c};", ind)
    return o

def merge_rows(with_ml, acc="a"):
    """Merge the splits' partial accumulators a{r}_c (and m{r}, l{r} if with_ml) into split 0,
    round by round through tile_a / tile_b (and tile_s)."""
    o=""
    for r in range(R):
        first = 1
        while first < S:
            last = min(first + C, S)
            o += L("workgroupBarrier();")
            o += L(f"if (split >= {first}u && split < {last}u) {{")
            o += L(f"let j = split - {first}u;", 2)
            o += L(f"let e = ((j % {H}u) * {NS}u + slot) * {N}u;", 2)
            if with_ml:
                o += L(f"tile_s[(j * {NS}u + slot) % 64u] = vec2<f32>(m{r}, l{r});", 2)
            o += L(f"if (j < {H}u) {{", 2)
            for c in range(N):
                o += L(f"tile_a[e + {c}u] = {acc}{r}_{c};", 3)
            o += L("} else {", 2)
            for c in range(N):
                o += L(f"tile_b[e + {c}u] = {acc}{r}_{c};", 3)
            o += L("}", 2)
            o += L("}")
            o += L("workgroupBarrier();")
            o += L("if (split == 0u) {")
            for j in range(last - first):
                tile = "tile_a" if j < H else "tile_b"
                e = f"(({j % H}u * {NS}u + slot) * {N}u)"
                if with_ml:
                    o += L("{", 2)
                    o += L(f"let ml = tile_s[({j}u * {NS}u + slot) % 64u];", 3)
                    o += L(f"let mn = max(m{r}, ml.x);", 3)
                    o += L(f"let c0 = exp(m{r} - mn);", 3)
                    o += L(f"let c1 = exp(ml.x - mn);", 3)
                    o += L(f"l{r} = l{r} * c0 + ml.y * c1;", 3)
                    o += L(f"m{r} = mn;", 3)
                    for c in range(N):
                        o += L(f"{acc}{r}_{c} = {acc}{r}_{c} * c0 + {tile}[{e} + {c}u] * c1;", 3)
                    o += L("}", 2)
                else:
                    for c in range(N):
                        o += L(f"{acc}{r}_{c} += {tile}[{e} + {c}u];", 2)
            o += L("}")
            first = last
    return o

def merge_ml():
    """(m{r}, l{r}) of every split merged, the same in all splits (same order)."""
    o=""
    for r in range(R):
        o += L("workgroupBarrier();")
        o += L(f"tile_s[lid] = vec2<f32>(m{r}, l{r});")
        o += L("workgroupBarrier();")
        o += L("{")
        o += L(f"var mm = -3.0e38;", 2)
        o += L(f"var ll = 0.0;", 2)
        for s in range(S):
            o += L(f"let p{s} = tile_s[{s * NS}u + slot];", 2)
            o += L(f"let mn{s} = max(mm, p{s}.x);", 2)
            o += L(f"ll = ll * exp(mm - mn{s}) + p{s}.y * exp(p{s}.x - mn{s});", 2)
            o += L(f"mm = mn{s};", 2)
        o += L(f"m{r} = mm;", 2)
        o += L(f"l{r} = ll;", 2)
        o += L("}")
    return o

def fwd(lanes=False):
    """The forward; `lanes`: the 8 invocations of a subgroup (one key split, 8 query slots) read
    each key row once between them, 2 vec4s each, and pass it on by broadcasts (lane8_broadcast, reduce_subgroup.wgsl)."""
    o = prologue("attention_hd64_lanes" if lanes else "attention_hd64")
    if lanes:
        o += L("let lane = lid % 8u;")
    o += loads("q", "q", " * p.scale")
    for r in range(R):
        for c in range(N):
            o += L(f"var a{r}_{c} = vec4<f32>(0.0);")
        o += L(f"var m{r} = -3.0e38;")
        o += L(f"var l{r} = 0.0;")
    o += loop_head()
    o += key_head()
    o += dots("q", "kc", "s", lanes=lanes)
    for r in range(R):
        for u in range(U):
            o += L(f"let s{r}{u} = select(-3.0e38, sum4(s{r}{u}a), v{r}{u});", 2)
        o += L(f"let mn{r} = max(m{r}, {pairwise('max', [f's{r}{u}' for u in range(U)])});", 2)
        o += L(f"let corr{r} = exp(m{r} - mn{r});", 2)
        for u in range(U):
            o += L(f"let w{r}{u} = select(0.0, exp(s{r}{u} - mn{r}), v{r}{u});", 2)
        o += L(f"l{r} = l{r} * corr{r} + {pairwise('+', [f'w{r}{u}' for u in range(U)])};", 2)
        o += L(f"m{r} = mn{r};", 2)
    # A key no row sees may be an unwritten cache slot (batched decoding): NaN there times a
    # weight of 0 would still be NaN, so its values are zeroed.
    for u in range(U):
        o += L(f"let any{u} = " + " || ".join(f"v{r}{u}" for r in range(R)) + ";", 2)
    for c in range(N):
        for u in range(U):
            if lanes:
                if c % 8 == 0:
                    o += L(f"let vl{u}_{c // 8} = vc[b{u} + {c}u + lane];", 2)
                o += L(f"let vv{u}_{c} = select(vec4<f32>(0.0), lane8_broadcast(vl{u}_{c // 8}, {c % 8}u), any{u});", 2)
            else:
                o += L(f"let vv{u}_{c} = select(vec4<f32>(0.0), vc[b{u} + {c}u], any{u});", 2)
        for r in range(R):
            o += L(f"a{r}_{c} = a{r}_{c} * corr{r} + " + " + ".join(f"w{r}{u} * vv{u}_{c}" for u in range(U)) + ";", 2)
    o += L("}")
    o += merge_rows(True)
    for r in range(R):
        o += L(f"if (split == 0u && live{r}) {{")
        for c in range(N):
            o += L(f"out[rb{r} + {c}u] = a{r}_{c} / l{r};", 2)
        o += L("}")
    return o + "}\n"

def bq():
    o = prologue("attention_backward_q_hd64")
    o += loads("q", "q", " * p.scale")
    o += loads("g", "dout")
    for r in range(R):
        o += L(f"let dsum{r} = sum4(" + " + ".join(f"g{r}_{c} * o[rb{r} + {c}u]" for c in range(N)) + ");")
        o += L(f"var m{r} = -3.0e38;")
        o += L(f"var l{r} = 0.0;")
    o += L("// lse over the visible keys, each split its keys, then merged.")
    o += loop_head()
    o += key_head()
    o += dots("q", "kc", "s")
    for r in range(R):
        for u in range(U):
            o += L(f"let s{r}{u} = select(-3.0e38, sum4(s{r}{u}a), v{r}{u});", 2)
        o += L(f"let mn{r} = max(m{r}, {pairwise('max', [f's{r}{u}' for u in range(U)])});", 2)
        for u in range(U):
            o += L(f"let w{r}{u} = select(0.0, exp(s{r}{u} - mn{r}), v{r}{u});", 2)
        o += L(f"l{r} = l{r} * exp(m{r} - mn{r}) + {pairwise('+', [f'w{r}{u}' for u in range(U)])};", 2)
        o += L(f"m{r} = mn{r};", 2)
    o += L("}")
    o += merge_ml()
    for r in range(R):
        o += L(f"let lse{r} = m{r} + log(l{r});")
        o += L(f"if (split == 0u && live{r}) {{")
        o += L(f"stats[2u * (i{r} * d.heads + h)] = lse{r};", 2)
        o += L(f"stats[2u * (i{r} * d.heads + h) + 1u] = dsum{r};", 2)
        o += L("}")
        for c in range(N):
            o += L(f"var a{r}_{c} = vec4<f32>(0.0);")
    o += L("// dq = scale Σ_j P_ij (dout_i · v_j - D_i) k_j, each split its keys, then summed.")
    o += loop_head()
    o += key_head()
    o += dots("q", "kc", "s")
    o += dots("g", "vc", "e")
    for r in range(R):
        for u in range(U):
            o += L(f"let w{r}{u} = select(0.0, exp(sum4(s{r}{u}a) - lse{r}) * (sum4(e{r}{u}a) - dsum{r}), v{r}{u});", 2)
    for c in range(N):
        for r in range(R):
            o += L(f"a{r}_{c} += " + " + ".join(f"w{r}{u} * sk{u}_{c}" for u in range(U)) + ";", 2)
    o += L("}")
    o += merge_rows(False)
    for r in range(R):
        o += L(f"if (split == 0u && live{r}) {{")
        for c in range(N):
            o += L(f"dq[rb{r} + {c}u] = a{r}_{c} * p.scale;", 2)
        o += L("}")
    return o + "}\n"

def bkv():
    o = "fn attention_backward_kv_hd64(d: Dims, lid: u32, b: u32) {\n"
    o += L("let blocks = (d.t + 63u) / 64u;")
    o += L("let kvh = b / blocks;")
    o += L("let jb = (b % blocks) * 64u;")
    o += L(f"let slot = lid % {NS}u;")
    o += L(f"let split = lid / {NS}u;")
    o += L("let group = d.heads / d.kv_heads;")
    for r in range(R):
        o += L(f"let live{r} = jb + slot + {NS*r}u < d.t;")
        o += L(f"let j{r} = min(jb + slot + {NS*r}u, d.t - 1u);")
        o += L(f"let kb{r} = (j{r} * d.kv_heads + kvh) * {N}u;")
        # the queries that see key j: j .. end, with a window those before first_end, then
        # (a prompt key in a packed sequence) the first reach of each segment
        o += L(f"var end{r} = d.t;")
        o += L(f"var kpos{r} = j{r};")
        o += L("if (d.packed != 0u) {")
        o += L(f"end{r} = spans[2u * j{r} + 1u];", 2)
        o += L(f"if (j{r} >= d.prefix) {{", 2)
        o += L(f"kpos{r} = d.prefix + j{r} - spans[2u * j{r}];", 3)
        o += L("}", 2)
        o += L("}")
        o += L(f"var first_end{r} = end{r};")
        o += L(f"var reach{r} = 0u;")
        o += L("if (d.window != 0u) {")
        o += L(f"first_end{r} = min(end{r}, j{r} + d.window);", 2)
        o += L(f"if (d.packed != 0u && j{r} < d.prefix) {{", 2)
        o += L(f"first_end{r} = min(first_end{r}, d.prefix);", 3)
        o += L(f"if (j{r} + d.window > d.prefix) {{", 3)
        o += L(f"reach{r} = j{r} + d.window - d.prefix;", 4)
        o += L("}", 3)
        o += L("}", 2)
        o += L("}")
    fe = "0u"; ra = "0u"
    for r in range(R):
        fe = f"max({fe}, select(0u, first_end{r}, live{r}))"
        ra = f"max({ra}, select(0u, reach{r}, live{r}))"
    o += L(f"let qmax = workgroup_max(lid, {fe});")
    o += L("var reach_all = 0u;")
    o += L("if (d.window != 0u) {")
    o += L(f"reach_all = workgroup_max(lid, {ra});", 2)
    o += L("}")
    o += L("var seg = d.t;")
    o += L("if (reach_all != 0u) {")
    o += L("seg = d.prefix;", 2)
    o += L("}")
    o += L("var qa = jb;")
    o += L("var qe = qmax;")
    for r in range(R):
        for c in range(N):
            o += L(f"let k{r}_{c} = kc[kb{r} + {c}u] * p.scale;")
        for c in range(N):
            o += L(f"let v{r}_{c} = vc[kb{r} + {c}u];")
        for c in range(N):
            o += L(f"var gk{r}_{c} = vec4<f32>(0.0);")
            o += L(f"var gv{r}_{c} = vec4<f32>(0.0);")
    o += L("loop {")
    o += L("// Pairs (query i >= qa, head g of the group), numbered (i - qa) * group + g.", 2)
    o += L("let pairs = select(0u, (qe - qa) * group, qe > qa);", 2)
    o += L(f"for (var e = {U}u * split; e < pairs; e += {U*S}u) {{", 2)
    for u in range(U):
        o += L(f"let pe{u} = min(e + {u}u, pairs - 1u);", 3)
        o += L(f"let qi{u} = qa + pe{u} / group;", 3)
        o += L(f"let row{u} = qi{u} * d.heads + kvh * group + pe{u} % group;", 3)
        o += L(f"let rb{u} = row{u} * {N}u;", 3)
        o += L(f"let st{u} = vec2<f32>(stats[2u * row{u}], stats[2u * row{u} + 1u]);", 3)
        o += L(f"var qpos{u} = qi{u};", 3)
        o += L(f"if (d.packed != 0u && qi{u} >= d.prefix) {{", 3)
        o += L(f"qpos{u} = d.prefix + qi{u} - spans[2u * qi{u}];", 4)
        o += L("}", 3)
    for r in range(R):
        for u in range(U):
            o += L(f"let m{r}{u} = live{r} && e + {u}u < pairs && qi{u} >= j{r} && qi{u} < end{r} && (d.window == 0u || qpos{u} < kpos{r} + d.window);", 3)
    # dots: shared loads of q rows / dout rows
    for r in range(R):
        for u in range(U):
            o += L(f"var s{r}{u}a = vec4<f32>(0.0);", 3)
            o += L(f"var e{r}{u}a = vec4<f32>(0.0);", 3)
    for c in range(N):
        for u in range(U):
            o += L(f"let qq{u}_{c} = q[rb{u} + {c}u];", 3)
            o += L(f"let gg{u}_{c} = dout[rb{u} + {c}u];", 3)
        for r in range(R):
            for u in range(U):
                o += L(f"s{r}{u}a += k{r}_{c} * qq{u}_{c};", 3)
                o += L(f"e{r}{u}a += v{r}_{c} * gg{u}_{c};", 3)
    for r in range(R):
        for u in range(U):
            o += L(f"let pr{r}{u} = select(0.0, exp(sum4(s{r}{u}a) - st{u}.x), m{r}{u});", 3)
            o += L(f"let ds{r}{u} = pr{r}{u} * (sum4(e{r}{u}a) - st{u}.y);", 3)
    for c in range(N):
        for r in range(R):
            o += L(f"gk{r}_{c} += " + " + ".join(f"ds{r}{u} * qq{u}_{c}" for u in range(U)) + ";", 3)
            o += L(f"gv{r}_{c} += " + " + ".join(f"pr{r}{u} * gg{u}_{c}" for u in range(U)) + ";", 3)
    o += L("}", 2)
    o += L("if (seg >= d.t) {", 2)
    o += L("break;", 3)
    o += L("}", 2)
    o += L("let seg_end = clamp(spans[2u * seg + 1u], seg + 1u, d.t);", 2)
    o += L("qa = max(seg, qmax);", 2)
    o += L("qe = min(seg_end, seg + reach_all);", 2)
    o += L("seg = seg_end;", 2)
    o += L("}")
    o += merge_rows(False, "gk")
    o += merge_rows(False, "gv")
    for r in range(R):
        o += L(f"if (split == 0u && live{r}) {{")
        for c in range(N):
            o += L(f"dk[kb{r} + {c}u] = gk{r}_{c} * p.scale;", 2)
            o += L(f"dv[kb{r} + {c}u] = gv{r}_{c};", 2)
        o += L("}")
    return o + "}\n"

def with_u(u, gen):
    """gen() with u keys (or queries) a loop step instead of U."""
    global U
    saved = U
    U = u
    try:
        return gen()
    finally:
        U = saved

path = "shaders/attention_tiled_hd64.wgsl"
src = open(path).read()
cut = src.index("\nfn attention_hd64")
open(path, "w").write(src[:cut] + "\n" + fwd() + "\n" + fwd(lanes=True) + "\n" + with_u(1, bq) + "\n" + with_u(1, bkv))
