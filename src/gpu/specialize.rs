//! A kernel's WGSL specialized before the driver sees it: its pipeline constants applied, its
//! entry point alone kept, and every `if` whose condition those constants decide replaced by the
//! branch taken. The kernel files select a weight type or a form with `if (WDTYPE == 3u)`,
//! `if (GROUPED)` and the like; without this the driver receives every branch, inlines every call
//! in them and only then folds the constants. On lavapipe that translation runs at each pipeline
//! creation, cached or not: 1.9 s for the grouped 8-row Q4_1 product, mostly spent on branches
//! the constants rule out (README, stops 51 and 52).

use std::collections::{HashMap, HashSet};

use wgpu::naga;

use naga::back::pipeline_constants::process_overrides;
use naga::back::PipelineConstants;
use naga::compact::{compact, KeepUnused};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{Block, Expression, Function, Handle, Literal, LocalVariable, Module, ShaderStage, Statement, Type};

/// A kernel's specialized module, and the bindings (group 0) its entry point still uses: bit j
/// for binding j. The driver's layout, derived from this module, has only those, so the
/// dispatches bind only those.
#[derive(Debug)]
pub struct Specialized {
    pub module: Module,
    pub bindings: u64,
}

/// The module of compute entry point `entry` in `src` with `constants` applied and the branches
/// they rule out removed; an error names the step that failed (the caller then hands the WGSL
/// to wgpu as it is, which reports a bad source itself).
pub fn specialize(src: &str, entry: &str, constants: &[(&str, f64)]) -> Result<Specialized, String> {
    let module = naga::front::wgsl::parse_str(src).map_err(|e| format!("parse: {e}"))?;
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .map_err(|e| format!("validate: {e}"))?;
    let mut values = PipelineConstants::default();
    for &(name, v) in constants {
        values.insert(name.to_string(), v);
    }
    let (module, _) = process_overrides(&module, &info, Some((ShaderStage::Compute, entry)), &values)
        .map_err(|e| format!("pipeline constants: {e}"))?;
    let mut module = module.into_owned();
    if module.entry_points.len() != 1 || module.entry_points[0].name != entry {
        return Err(format!("no entry point {entry}"));
    }
    let returns: HashMap<Handle<Function>, Handle<Type>> =
        module.functions.iter().filter_map(|(h, f)| Some((h, f.result.as_ref()?.ty))).collect();
    fold_constant_arguments(&mut module);
    // A function that then returns a constant before doing anything else (`lanes8` where
    // LANES8_IN_ORDER holds) has its calls replaced by that constant, which may decide its
    // callers' branches in turn. Callees come before their callers in the arena.
    let mut known: HashMap<Handle<Function>, bool> = HashMap::new();
    let mut functions = std::mem::take(&mut module.functions);
    for (h, f) in functions.iter_mut() {
        inline_known_calls(&known, f);
        prune_function(&module, &returns, f);
        if let Some(b) = returns_const(&module, f, &f.body) {
            known.insert(h, b);
        }
    }
    module.functions = functions;
    let mut entries = std::mem::take(&mut module.entry_points);
    for ep in entries.iter_mut() {
        inline_known_calls(&known, &mut ep.function);
        prune_function(&module, &returns, &mut ep.function);
    }
    module.entry_points = entries;
    // The functions only the removed branches called go too.
    compact(&mut module, KeepUnused::No);
    let info = Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .map_err(|e| format!("pruned module: {e}"))?;
    let used = info.get_entry_point(0);
    let mut bindings = 0u64;
    for (h, g) in module.global_variables.iter() {
        match &g.binding {
            Some(b) if !used[h].is_empty() && b.group == 0 && b.binding < 64 => bindings |= 1 << b.binding,
            Some(b) if !used[h].is_empty() => return Err(format!("binding {b:?} outside group 0's first 64")),
            _ => {}
        }
    }
    Ok(Specialized { module, bindings })
}

fn prune_function(module: &Module, returns: &HashMap<Handle<Function>, Handle<Type>>, f: &mut Function) {
    // Until nothing folds: removing a branch can leave a `&&` / `||` temporary stored once.
    loop {
        let once = stored_once(f);
        let mut body = std::mem::take(&mut f.body);
        let mut p = Pruner { module, f, stored_once: once, folded: 0 };
        p.block(&mut body, &mut HashMap::new());
        let folded = p.folded;
        f.body = body;
        if folded == 0 {
            break;
        }
    }
    // A removed call leaves its result expression behind, which no statement now defines: made
    // a zero of its type (never read: its users went with the call), so the callee can go.
    let mut defined = HashSet::new();
    defined_results(&f.body, &mut defined);
    let orphans: Vec<_> = f
        .expressions
        .iter()
        .filter(|(h, _)| !defined.contains(h))
        .filter_map(|(h, e)| match e {
            Expression::CallResult(callee) => Some((h, *returns.get(callee)?)),
            Expression::WorkGroupUniformLoadResult { ty } | Expression::SubgroupOperationResult { ty } => Some((h, *ty)),
            Expression::AtomicResult { ty, comparison: false } => Some((h, *ty)),
            _ => None,
        })
        .collect();
    for (h, ty) in orphans {
        *f.expressions.get_mut(h) = Expression::ZeroValue(ty);
    }
}

/// The bool a function returns whatever its arguments: its first statement that does anything
/// (block openings and expression emits aside) returns a constant.
fn returns_const(module: &Module, f: &Function, block: &Block) -> Option<bool> {
    for s in block.iter() {
        match s {
            Statement::Emit(_) => {}
            Statement::Block(b) => return returns_const(module, f, b),
            Statement::Return { value: Some(v) } => return const_bool(module, f, *v, &HashMap::new()),
            _ => return None,
        }
    }
    None
}

/// A function called from one place only (as most are, once one entry point is kept) with a
/// literal or constant argument (`q_sums(ln, 8u, true, false)`) reads that value for the
/// parameter, so the branches on it fold too.
fn fold_constant_arguments(module: &mut Module) {
    fn calls(block: &Block, out: &mut Vec<(Handle<Function>, Vec<Handle<Expression>>)>) {
        for s in block.iter() {
            match s {
                Statement::Call { function, arguments, .. } => out.push((*function, arguments.clone())),
                _ => inner_blocks(s).for_each(|b| calls(b, out)),
            }
        }
    }
    // (callee, the constant expression of each argument) per call site.
    let mut sites: HashMap<Handle<Function>, Vec<Vec<Option<Expression>>>> = HashMap::new();
    let callers = module.functions.iter().map(|(_, f)| f).chain(module.entry_points.iter().map(|e| &e.function));
    for caller in callers {
        let mut found = Vec::new();
        calls(&caller.body, &mut found);
        for (callee, args) in found {
            let values = args
                .iter()
                .map(|a| match &caller.expressions[*a] {
                    e @ (Expression::Literal(_) | Expression::Constant(_)) => Some(e.clone()),
                    _ => None,
                })
                .collect();
            sites.entry(callee).or_default().push(values);
        }
    }
    for (callee, mut list) in sites {
        let (Some(values), true) = (list.pop(), list.is_empty()) else { continue };
        let f = &mut module.functions[callee];
        let args: Vec<_> = f
            .expressions
            .iter()
            .filter_map(|(h, e)| match e {
                Expression::FunctionArgument(i) => Some((h, values.get(*i as usize)?.clone()?)),
                _ => None,
            })
            .collect();
        for (h, v) in args {
            *f.expressions.get_mut(h) = v;
        }
    }
}

/// Calls of functions in `known` removed, their results made the constant returned.
fn inline_known_calls(known: &HashMap<Handle<Function>, bool>, f: &mut Function) {
    let mut replaced = Vec::new();
    let mut body = std::mem::take(&mut f.body);
    drop_known_calls(known, &mut body, &mut replaced);
    f.body = body;
    for (r, v) in replaced {
        *f.expressions.get_mut(r) = Expression::Literal(Literal::Bool(v));
    }
}

fn drop_known_calls(known: &HashMap<Handle<Function>, bool>, block: &mut Block, out: &mut Vec<(Handle<Expression>, bool)>) {
    let mut kept = Block::with_capacity(block.len());
    for (mut s, span) in std::mem::take(block).span_into_iter() {
        match &mut s {
            Statement::Call { function, result: Some(r), .. } if known.contains_key(function) => {
                out.push((*r, known[function]));
                continue;
            }
            s => inner_blocks_mut(s).into_iter().for_each(|b| drop_known_calls(known, b, out)),
        }
        kept.push(s, span);
    }
    *block = kept;
}

/// The blocks statement `s` holds directly (a block's, an if's two, a loop's two, a switch's).
fn inner_blocks(s: &Statement) -> impl Iterator<Item = &Block> {
    let (one, two, cases): (Option<&Block>, Option<&Block>, &[naga::SwitchCase]) = match s {
        Statement::Block(b) => (Some(b), None, &[]),
        Statement::If { accept, reject, .. } => (Some(accept), Some(reject), &[]),
        Statement::Loop { body, continuing, .. } => (Some(body), Some(continuing), &[]),
        Statement::Switch { cases, .. } => (None, None, cases),
        _ => (None, None, &[]),
    };
    one.into_iter().chain(two).chain(cases.iter().map(|c| &c.body))
}

fn inner_blocks_mut(s: &mut Statement) -> Vec<&mut Block> {
    match s {
        Statement::Block(b) => vec![b],
        Statement::If { accept, reject, .. } => vec![accept, reject],
        Statement::Loop { body, continuing, .. } => vec![body, continuing],
        Statement::Switch { cases, .. } => cases.iter_mut().map(|c| &mut c.body).collect(),
        _ => vec![],
    }
}

/// The result expressions the statements of `block` define.
fn defined_results(block: &Block, out: &mut HashSet<Handle<Expression>>) {
    for s in block.iter() {
        match s {
            Statement::Call { result: Some(r), .. }
            | Statement::Atomic { result: Some(r), .. }
            | Statement::WorkGroupUniformLoad { result: r, .. }
            | Statement::SubgroupCollectiveOperation { result: r, .. }
            | Statement::SubgroupGather { result: r, .. }
            | Statement::SubgroupBallot { result: r, .. } => {
                out.insert(*r);
            }
            _ => inner_blocks(s).for_each(|b| defined_results(b, out)),
        }
    }
}

/// The unnamed locals (naga's temporaries for `&&` and `||`, used only through loads and
/// stores) that one statement of the function stores to.
fn stored_once(f: &Function) -> HashSet<Handle<LocalVariable>> {
    fn count(f: &Function, block: &Block, n: &mut HashMap<Handle<LocalVariable>, u32>) {
        for s in block.iter() {
            match s {
                Statement::Store { pointer, .. } => {
                    if let Expression::LocalVariable(v) = f.expressions[*pointer] {
                        *n.entry(v).or_default() += 1;
                    }
                }
                _ => inner_blocks(s).for_each(|b| count(f, b, n)),
            }
        }
    }
    let mut n = HashMap::new();
    count(f, &f.body, &mut n);
    n.into_iter()
        .filter(|&(v, c)| c == 1 && f.local_variables[v].name.is_none() && f.local_variables[v].init.is_none())
        .map(|(v, _)| v)
        .collect()
}

/// One pass replacing each `if` with a constant condition by the branch taken, depth first.
struct Pruner<'a> {
    module: &'a Module,
    f: &'a Function,
    stored_once: HashSet<Handle<LocalVariable>>,
    folded: usize,
}

impl Pruner<'_> {
    /// `locals`: the temporaries known here, stored a constant by a statement that runs before
    /// this block whenever it runs (earlier in an enclosing block, or in a nested plain block).
    fn block(&mut self, block: &mut Block, locals: &mut HashMap<Handle<LocalVariable>, bool>) {
        for s in block.iter_mut() {
            match s {
                Statement::Store { pointer, value } => {
                    if let Expression::LocalVariable(v) = self.f.expressions[*pointer] {
                        if self.stored_once.contains(&v) {
                            if let Some(b) = const_bool(self.module, self.f, *value, locals) {
                                locals.insert(v, b);
                            }
                        }
                    }
                }
                Statement::If { condition, accept, reject } => match const_bool(self.module, self.f, *condition, locals) {
                    Some(taken) => {
                        let mut b = std::mem::take(if taken { accept } else { reject });
                        self.folded += 1;
                        self.block(&mut b, locals);
                        *s = Statement::Block(b);
                    }
                    None => {
                        self.block(accept, &mut locals.clone());
                        self.block(reject, &mut locals.clone());
                    }
                },
                Statement::Block(b) => self.block(b, locals),
                Statement::Loop { body, continuing, .. } => {
                    self.block(body, &mut locals.clone());
                    self.block(continuing, &mut locals.clone());
                }
                Statement::Switch { cases, .. } => {
                    for c in cases.iter_mut() {
                        self.block(&mut c.body, &mut locals.clone());
                    }
                }
                _ => {}
            }
        }
    }
}

/// The value of a condition the pipeline constants decided: a folded literal, a constant, a
/// known temporary, or `!`, `&`, `|` of those (`x & false` and `x | true` whatever x).
fn const_bool(module: &Module, f: &Function, h: Handle<Expression>, locals: &HashMap<Handle<LocalVariable>, bool>) -> Option<bool> {
    use naga::{BinaryOperator as B, UnaryOperator as U};
    let literal = |e: &Expression| match e {
        Expression::Literal(Literal::Bool(b)) => Some(*b),
        _ => None,
    };
    match &f.expressions[h] {
        Expression::Constant(c) => literal(&module.global_expressions[module.constants[*c].init]),
        Expression::Load { pointer } => match f.expressions[*pointer] {
            Expression::LocalVariable(v) => locals.get(&v).copied(),
            _ => None,
        },
        Expression::Unary { op: U::LogicalNot, expr } => const_bool(module, f, *expr, locals).map(|b| !b),
        Expression::Binary { op: op @ (B::LogicalAnd | B::LogicalOr | B::And | B::InclusiveOr), left, right } => {
            let and = matches!(op, B::LogicalAnd | B::And);
            match (const_bool(module, f, *left, locals), const_bool(module, f, *right, locals)) {
                (Some(a), Some(b)) => Some(if and { a && b } else { a || b }),
                // The operand that decides alone: false for and, true for or.
                (Some(x), None) | (None, Some(x)) if x != and => Some(x),
                _ => None,
            }
        }
        e => literal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Branches decided by an override, by a constant and at run time; a second entry point.
    const SRC: &str = include_str!("../../tests/fixtures/specialize_branches.wgsl");

    fn names(m: &Module) -> Vec<String> {
        m.functions.iter().filter_map(|(_, f)| f.name.clone()).collect()
    }

    #[test]
    fn branches_the_constants_decide_are_removed_with_their_callees() {
        let s = specialize(SRC, "main", &[("KIND", 1.0)]).unwrap();
        // Binding 2 is read only by `slow`, which went: the layout has binding 0 alone.
        assert_eq!(s.bindings, 0b1);
        assert_eq!(specialize(SRC, "other", &[]).unwrap().bindings, 0b101);
        let m = s.module;
        assert_eq!(m.entry_points.len(), 1);
        assert_eq!(names(&m), vec!["kind_one".to_string()]);
        let m = specialize(SRC, "main", &[]).unwrap().module;
        assert_eq!(names(&m), vec!["kind_other".to_string()]);
        // A function returning a constant first goes with its calls and decides their branch:
        // `in_order(..) && KIND != 2u` is true, then false.
        let m2 = specialize(SRC, "main", &[("KIND", 2.0)]).unwrap().module;
        assert_eq!(names(&m2), vec!["kind_other".to_string(), "unchecked".to_string()]);
        Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&m2).unwrap();
        // The branches on run-time values stay (`x & true` is x), and the result validates.
        let ifs = m.entry_points[0].function.body.iter().filter(|s| matches!(s, Statement::If { .. })).count();
        assert_eq!(ifs, 2);
        Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&m).unwrap();
    }

    /// On a real kernel: the grouped 8-row Q4_1 product loses Q8_0's block code and the
    /// non-grouped 8-lane forms, which only `WDTYPE` and `GROUPED` rule out; the `v4` argument
    /// of its one call to `q_sums` rules out the scalar block form; where the lane layout is
    /// known (`LANES8_IN_ORDER`) the path for invocations reading their own rows goes.
    #[test]
    fn run_kernels_keep_only_the_forms_their_constants_select() {
        use crate::gpu::pipeline::{module_source, Subgroups, MATMUL_WGSL};
        use crate::gpu::DType;
        let form = |sg: Subgroups, dtype: DType, grouped: f64| {
            let src = module_source(MATMUL_WGSL, sg, true);
            let m = specialize(&src, "matmul_q_sums_run_v4", &[("WDTYPE", dtype.code() as f64), ("GROUPED", grouped)]).unwrap().module;
            names(&m)
        };
        let has = |n: &[String], f: &str| n.iter().any(|x| x == f);
        let grouped = form(Subgroups::Eight, DType::Q4_1, 1.0);
        assert!(has(&grouped, "group_dots_v4") && has(&grouped, "q4_block_dot"), "{grouped:?}");
        assert!(!has(&grouped, "q8_block_dot") && !has(&grouped, "q8_quad"), "{grouped:?}");
        let ungrouped = form(Subgroups::Eight, DType::Q4_1, 0.0);
        assert!(!has(&ungrouped, "group_dots_v4") && has(&ungrouped, "block_dots_v4"), "{ungrouped:?}");
        assert!(!has(&ungrouped, "block_dots"), "{ungrouped:?}");
        assert!(has(&form(Subgroups::Eight, DType::Q8_0, 1.0), "q8_quad"));
        // The run-time lane check and the other path stay unless the layout is known.
        assert!(has(&ungrouped, "lanes8") && has(&ungrouped, "x_block"), "{ungrouped:?}");
        let in_order = form(Subgroups::EightInOrder, DType::Q4_1, 1.0);
        assert!(!has(&in_order, "lanes8") && !has(&in_order, "x_block"), "{in_order:?}");
        assert!(has(&in_order, "group_dots_v4") && has(&in_order, "x_block_shared"), "{in_order:?}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(specialize("fn (", "main", &[]).unwrap_err().starts_with("parse"));
        assert!(specialize(SRC, "main", &[("NO_SUCH", 1.0)]).unwrap_err().starts_with("pipeline constants"));
        assert!(specialize(SRC, "no_such", &[]).unwrap_err().starts_with("no entry point"));
    }
}
