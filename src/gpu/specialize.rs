//! A kernel's WGSL specialized before the driver sees it: its pipeline constants applied, its
//! entry point alone kept, and every `if` whose condition those constants decide replaced by the
//! branch taken. The kernel files select a weight type or a form with `if (WDTYPE == 3u)`,
//! `if (GROUPED)` and the like; without this the driver receives every branch, inlines every call
//! in them and only then folds the constants. On lavapipe that translation runs at each pipeline
//! creation, cached or not: 1.9 s for the grouped 8-row Q4_1 product, mostly spent on branches
//! the constants rule out (README, stop 51).

use std::collections::{HashMap, HashSet};

use wgpu::naga;

use naga::back::pipeline_constants::process_overrides;
use naga::back::PipelineConstants;
use naga::compact::{compact, KeepUnused};
use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{Block, Expression, Function, Handle, Literal, Module, ShaderStage, Statement, Type};

/// The module of compute entry point `entry` in `src` with `constants` applied and the branches
/// they rule out removed; an error names the step that failed (the caller then hands the WGSL
/// to wgpu as it is, which reports a bad source itself).
pub fn specialize(src: &str, entry: &str, constants: &[(&str, f64)]) -> Result<Module, String> {
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
    let returns: HashMap<Handle<Function>, Handle<Type>> =
        module.functions.iter().filter_map(|(h, f)| Some((h, f.result.as_ref()?.ty))).collect();
    let mut functions = std::mem::take(&mut module.functions);
    for (_, f) in functions.iter_mut() {
        prune_function(&module, &returns, f);
    }
    module.functions = functions;
    let mut entries = std::mem::take(&mut module.entry_points);
    for ep in entries.iter_mut() {
        prune_function(&module, &returns, &mut ep.function);
    }
    module.entry_points = entries;
    // The functions only the removed branches called go too.
    compact(&mut module, KeepUnused::No);
    Validator::new(ValidationFlags::all(), Capabilities::all())
        .validate(&module)
        .map_err(|e| format!("pruned module: {e}"))?;
    Ok(module)
}

fn prune_function(module: &Module, returns: &HashMap<Handle<Function>, Handle<Type>>, f: &mut Function) {
    let mut body = std::mem::take(&mut f.body);
    prune_block(module, f, &mut body);
    f.body = body;
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
            Statement::Block(b) => defined_results(b, out),
            Statement::If { accept, reject, .. } => {
                defined_results(accept, out);
                defined_results(reject, out);
            }
            Statement::Loop { body, continuing, .. } => {
                defined_results(body, out);
                defined_results(continuing, out);
            }
            Statement::Switch { cases, .. } => cases.iter().for_each(|c| defined_results(&c.body, out)),
            _ => {}
        }
    }
}

/// Replaces each `if` with a constant condition by the branch taken, depth first.
fn prune_block(module: &Module, f: &Function, block: &mut Block) {
    for s in block.iter_mut() {
        match s {
            Statement::If { condition, accept, reject } => match const_bool(module, f, *condition) {
                Some(taken) => {
                    let mut b = std::mem::take(if taken { accept } else { reject });
                    prune_block(module, f, &mut b);
                    *s = Statement::Block(b);
                }
                None => {
                    prune_block(module, f, accept);
                    prune_block(module, f, reject);
                }
            },
            Statement::Block(b) => prune_block(module, f, b),
            Statement::Loop { body, continuing, .. } => {
                prune_block(module, f, body);
                prune_block(module, f, continuing);
            }
            Statement::Switch { cases, .. } => {
                for c in cases.iter_mut() {
                    prune_block(module, f, &mut c.body);
                }
            }
            _ => {}
        }
    }
}

/// The value of a condition the pipeline constants decided: a folded literal, or a constant.
fn const_bool(module: &Module, f: &Function, h: Handle<Expression>) -> Option<bool> {
    let literal = |e: &Expression| match e {
        Expression::Literal(Literal::Bool(b)) => Some(*b),
        _ => None,
    };
    match &f.expressions[h] {
        Expression::Constant(c) => literal(&module.global_expressions[module.constants[*c].init]),
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
        let m = specialize(SRC, "main", &[("KIND", 1.0)]).unwrap();
        assert_eq!(m.entry_points.len(), 1);
        assert_eq!(names(&m), vec!["kind_one".to_string()]);
        let m = specialize(SRC, "main", &[]).unwrap();
        assert_eq!(names(&m), vec!["kind_other".to_string()]);
        // The branch on a run-time value stays, and the result validates.
        let ifs = m.entry_points[0].function.body.iter().filter(|s| matches!(s, Statement::If { .. })).count();
        assert_eq!(ifs, 1);
        Validator::new(ValidationFlags::all(), Capabilities::all()).validate(&m).unwrap();
    }

    /// On a real kernel: the grouped 8-row Q4_1 product loses Q8_0's block code and the
    /// non-grouped 8-lane forms, which only `WDTYPE` and `GROUPED` rule out.
    #[test]
    fn the_grouped_q4_1_run_keeps_neither_q8_0_code_nor_the_ungrouped_forms() {
        use crate::gpu::pipeline::{module_source, MATMUL_WGSL};
        use crate::gpu::DType;
        let src = module_source(MATMUL_WGSL, true, true, true);
        let form = |dtype: DType, grouped: f64| {
            let m = specialize(&src, "matmul_q_sums_run_v4", &[("WDTYPE", dtype.code() as f64), ("GROUPED", grouped)]).unwrap();
            names(&m)
        };
        let has = |n: &[String], f: &str| n.iter().any(|x| x == f);
        let grouped = form(DType::Q4_1, 1.0);
        assert!(has(&grouped, "group_dots_v4") && has(&grouped, "q4_block_dot"), "{grouped:?}");
        assert!(!has(&grouped, "q8_block_dot") && !has(&grouped, "q8_quad"), "{grouped:?}");
        let ungrouped = form(DType::Q4_1, 0.0);
        assert!(!has(&ungrouped, "group_dots_v4") && has(&ungrouped, "block_dots"), "{ungrouped:?}");
        assert!(has(&form(DType::Q8_0, 1.0), "q8_quad"));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(specialize("fn (", "main", &[]).unwrap_err().starts_with("parse"));
        assert!(specialize(SRC, "main", &[("NO_SUCH", 1.0)]).unwrap_err().starts_with("pipeline constants"));
    }
}
