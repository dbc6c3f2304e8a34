//! Which manifests and files a scan's filter may match, and what is left of the filter for a
//! file: the filter typed against the scanned schema and bound with the `iceberg` crate, projected
//! onto each partition spec with the crate's transforms (`Transform::project` and
//! `strict_project`), then tested against manifest summaries, partition values and column
//! metrics. The crate keeps its own evaluators private, so the tests of one predicate against
//! one bound or value are written here; each answers "may match" whenever it cannot be sure.
//!
//! A predicate on a transform term (`day(ts) = '2026-01-02'`) tests the partition field of a
//! spec that has the same transform of the same column, exactly: it prunes manifests and files of
//! that spec and is decided in their residuals; on other specs, and against column metrics, it
//! prunes nothing. A predicate that cannot be typed (a literal the type cannot hold exactly)
//! prunes nothing and stays in every residual: pruning is only ever an optimisation, and the
//! residual is what the client still applies.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use iceberg::expr::{Bind, BoundPredicate, Predicate, PredicateOperator, Reference};
use iceberg::spec::{
    DataFile, Datum, FieldSummary, Literal, PartitionSpec, PrimitiveLiteral, PrimitiveType, Schema,
    SchemaRef, Struct, StructType, Transform, Type,
};

use super::filter::{Arity, Filter, Leaf, Op, Term};

/// A filter that does not fit the scanned schema (an unknown column, a value of the wrong
/// kind); the message is fit for a 400.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PruneError(pub String);

/// The scan's filter typed against its schema.
pub struct PruningFilter {
    schema: SchemaRef,
    case_sensitive: bool,
    /// The filter with `not` pushed down and literals as sent (residuals are cut from it).
    filter: Filter,
    /// The same, bound to the schema, with untypeable predicates as `true`.
    bound: BoundPredicate,
}

impl PruningFilter {
    pub fn new(
        filter: Filter,
        schema: SchemaRef,
        case_sensitive: bool,
    ) -> Result<Self, PruneError> {
        let filter = filter.without_not();
        for leaf in filter.leaves() {
            column(&schema, leaf.term.column(), case_sensitive)?;
        }
        let bound = bind(
            &predicate(&filter, &schema, case_sensitive),
            &schema,
            case_sensitive,
        )?;
        Ok(Self {
            schema,
            case_sensitive,
            filter,
            bound,
        })
    }

    /// Whether the filter keeps every row (nothing to prune, `true` as residual).
    pub fn is_true(&self) -> bool {
        self.filter == Filter::True
    }

    /// The filter projected onto a partition spec: what a file's partition must satisfy.
    pub fn on_spec(&self, spec: &PartitionSpec) -> Result<SpecFilter, PruneError> {
        let partition_type = spec
            .partition_type(&self.schema)
            .map_err(|e| PruneError(format!("partition spec {}: {e}", spec.spec_id())))?;
        let partition_schema = partition_schema(&partition_type)?;
        let inclusive = self.on_partition(&self.filter, spec)?;
        let inclusive = bind(&inclusive, &partition_schema, true)?;
        Ok(SpecFilter {
            spec: Arc::new(spec.clone()),
            partition_type,
            partition_schema,
            inclusive,
            residuals: HashMap::new(),
        })
    }

    /// `filter` as a predicate on `spec`'s partition fields that every partition holding a match
    /// satisfies: each predicate on a column projected with the spec's transforms, each on a
    /// transform term tested on the field with that transform (`true` where there is none).
    fn on_partition(&self, filter: &Filter, spec: &PartitionSpec) -> Result<Predicate, PruneError> {
        Ok(match filter {
            Filter::True => Predicate::AlwaysTrue,
            Filter::False => Predicate::AlwaysFalse,
            Filter::And(a, b) => self.on_partition(a, spec)?.and(self.on_partition(b, spec)?),
            Filter::Or(a, b) => self.on_partition(a, spec)?.or(self.on_partition(b, spec)?),
            // None is left after `without_not`.
            Filter::Not(_) => Predicate::AlwaysTrue,
            Filter::Leaf(leaf) => match &leaf.term {
                Term::Column(_) => match leaf_predicate(leaf, &self.schema, self.case_sensitive) {
                    Some(one) => {
                        project(&bind(&one, &self.schema, self.case_sensitive)?, spec, false)?
                    }
                    None => Predicate::AlwaysTrue,
                },
                Term::Transform { .. } => self
                    .transform_predicate(leaf, spec)
                    .unwrap_or(Predicate::AlwaysTrue),
            },
        })
    }

    /// A predicate on a transform term as one on the partition field of `spec` with that very
    /// transform of that column (the field holds the term's value), or `None` when there is no
    /// such field or the literal is not of the transform's result type exactly.
    fn transform_predicate(&self, leaf: &Leaf, spec: &PartitionSpec) -> Option<Predicate> {
        let Term::Transform {
            transform,
            column: name,
        } = &leaf.term
        else {
            return None;
        };
        let source = column(&self.schema, name, self.case_sensitive).ok()?;
        let transform: Transform = transform.parse().ok()?;
        let field = spec
            .fields()
            .iter()
            .find(|f| f.source_id == source.id && f.transform == transform)?;
        let Type::Primitive(result) = transform.result_type(&source.field_type).ok()? else {
            return None;
        };
        compare(Reference::new(field.name.clone()), &result, leaf)
    }

    /// The whole filter as the client sent it (the residual where no partition decides anything).
    pub fn whole(&self) -> serde_json::Value {
        self.filter.to_json()
    }

    /// Whether a data file's column metrics allow a match.
    pub fn metrics_may_match(&self, file: &DataFile) -> bool {
        file.record_count() > 0 && eval(&self.bound, &mut |leaf| metrics_leaf(leaf, file))
    }

    /// What a file in `partition` still has to apply, as the client sent it: predicates the
    /// partition decides are replaced by `true` or `false`.
    pub fn residual(&self, spec: &mut SpecFilter, partition: &Struct) -> serde_json::Value {
        if let Some(done) = spec.residuals.get(partition) {
            return done.clone();
        }
        let residual = self.cut(&self.filter, spec, partition).to_json();
        spec.residuals.insert(partition.clone(), residual.clone());
        residual
    }

    fn cut(&self, filter: &Filter, spec: &SpecFilter, partition: &Struct) -> Filter {
        match filter {
            Filter::And(a, b) => {
                Filter::and(self.cut(a, spec, partition), self.cut(b, spec, partition))
            }
            Filter::Or(a, b) => {
                Filter::or(self.cut(a, spec, partition), self.cut(b, spec, partition))
            }
            Filter::Leaf(leaf) => self.leaf_residual(leaf, spec, partition),
            other => other.clone(),
        }
    }

    fn leaf_residual(&self, leaf: &Leaf, spec: &SpecFilter, partition: &Struct) -> Filter {
        let keep = || Filter::Leaf(leaf.clone());
        if let Term::Transform { .. } = &leaf.term {
            // Exact on the partition field with the same transform: the partition decides it.
            let Some(exact) = self
                .transform_predicate(leaf, &spec.spec)
                .and_then(|p| bind(&p, &spec.partition_schema, true).ok())
            else {
                return keep();
            };
            if spec.partition_holds(&exact, partition, false) {
                return Filter::True;
            }
            if !spec.partition_holds(&exact, partition, true) {
                return Filter::False;
            }
            return keep();
        }
        let Some(one) = leaf_predicate(leaf, &self.schema, self.case_sensitive) else {
            return keep();
        };
        let Ok(bound) = bind(&one, &self.schema, self.case_sensitive) else {
            return keep();
        };
        match bound {
            BoundPredicate::AlwaysTrue => return Filter::True,
            BoundPredicate::AlwaysFalse => return Filter::False,
            _ => {}
        }
        // Every row of the partition matches: the strict projection holds for it.
        let strict = project(&bound, &spec.spec, true)
            .ok()
            .and_then(|p| bind(&p, &spec.partition_schema, true).ok());
        if strict.is_some_and(|p| spec.partition_holds(&p, partition, false)) {
            return Filter::True;
        }
        // No row of the partition matches: the inclusive projection fails for it.
        let inclusive = project(&bound, &spec.spec, false)
            .ok()
            .and_then(|p| bind(&p, &spec.partition_schema, true).ok());
        if inclusive.is_some_and(|p| !spec.partition_holds(&p, partition, true)) {
            return Filter::False;
        }
        keep()
    }
}

/// The scan's filter on one partition spec.
pub struct SpecFilter {
    spec: Arc<PartitionSpec>,
    partition_type: StructType,
    partition_schema: SchemaRef,
    inclusive: BoundPredicate,
    residuals: HashMap<Struct, serde_json::Value>,
}

impl SpecFilter {
    /// Whether a manifest whose partition summaries are `summaries` may hold a match (a manifest
    /// without summaries may).
    pub fn manifest_may_match(&self, summaries: Option<&[FieldSummary]>) -> bool {
        let Some(summaries) = summaries.filter(|s| s.len() == self.partition_type.fields().len())
        else {
            return true;
        };
        eval(&self.inclusive, &mut |leaf| {
            let Some((at, ty)) = self.position(leaf) else {
                return true;
            };
            summary_leaf(leaf, &summaries[at], &ty)
        })
    }

    /// Whether a file in `partition` may hold a match.
    pub fn partition_may_match(&self, partition: &Struct) -> bool {
        self.partition_holds(&self.inclusive, partition, true)
    }

    /// Whether `predicate` (on partition fields) holds for `partition`; where a predicate
    /// cannot be decided it counts as `undecided`.
    fn partition_holds(
        &self,
        predicate: &BoundPredicate,
        partition: &Struct,
        undecided: bool,
    ) -> bool {
        eval(predicate, &mut |leaf| {
            let Some((at, ty)) = self.position(leaf) else {
                return undecided;
            };
            let value = match partition.fields().get(at) {
                Some(Some(v)) => match datum(&ty, v) {
                    Some(d) => Some(d),
                    None => return undecided,
                },
                Some(None) => None,
                None => return undecided,
            };
            value_leaf(leaf, value.as_ref()).unwrap_or(undecided)
        })
    }

    /// A bound predicate's field: its position in the partition tuple and its type.
    fn position(&self, leaf: &BoundPredicate) -> Option<(usize, PrimitiveType)> {
        let id = leaf_field(leaf)?.id;
        let at = self
            .partition_type
            .fields()
            .iter()
            .position(|f| f.id == id)?;
        match self.partition_type.fields()[at].field_type.as_ref() {
            Type::Primitive(p) => Some((at, p.clone())),
            _ => None,
        }
    }
}

fn column<'a>(
    schema: &'a Schema,
    name: &str,
    case_sensitive: bool,
) -> Result<&'a iceberg::spec::NestedFieldRef, PruneError> {
    let found = if case_sensitive {
        schema.field_by_name(name)
    } else {
        schema.field_by_name_case_insensitive(name)
    };
    found.ok_or_else(|| {
        PruneError(format!(
            "the filter names column '{name}', which the scanned schema does not have"
        ))
    })
}

fn bind(
    p: &Predicate,
    schema: &Schema,
    case_sensitive: bool,
) -> Result<BoundPredicate, PruneError> {
    p.bind(Arc::new(schema.clone()), case_sensitive)
        .map_err(|e| PruneError(format!("the filter does not fit the schema: {e}")))
}

fn partition_schema(partition_type: &StructType) -> Result<SchemaRef, PruneError> {
    Schema::builder()
        .with_fields(partition_type.fields().iter().cloned())
        .build()
        .map(Arc::new)
        .map_err(|e| PruneError(format!("partition type: {e}")))
}

/// The filter as an `iceberg` predicate for pruning: a predicate that cannot be typed is `true`
/// (safe, since no `not` remains above it).
fn predicate(filter: &Filter, schema: &Schema, case_sensitive: bool) -> Predicate {
    match filter {
        Filter::True => Predicate::AlwaysTrue,
        Filter::False => Predicate::AlwaysFalse,
        Filter::And(a, b) => {
            predicate(a, schema, case_sensitive).and(predicate(b, schema, case_sensitive))
        }
        Filter::Or(a, b) => {
            predicate(a, schema, case_sensitive).or(predicate(b, schema, case_sensitive))
        }
        Filter::Not(_) => Predicate::AlwaysTrue,
        Filter::Leaf(leaf) => {
            leaf_predicate(leaf, schema, case_sensitive).unwrap_or(Predicate::AlwaysTrue)
        }
    }
}

/// One predicate with its values typed as its column, or `None` when that cannot be done exactly.
fn leaf_predicate(leaf: &Leaf, schema: &Schema, case_sensitive: bool) -> Option<Predicate> {
    let Term::Column(name) = &leaf.term else {
        return None;
    };
    let field = column(schema, name, case_sensitive).ok()?;
    let Type::Primitive(ty) = field.field_type.as_ref() else {
        return None;
    };
    // Bound by the schema's own spelling of the name (binding may be case-sensitive).
    compare(Reference::new(field.name.clone()), ty, leaf)
}

/// `leaf`'s test on `reference`, a value of `ty`, with its literals typed as `ty`; `None` when
/// that cannot be done exactly.
fn compare(reference: Reference, ty: &PrimitiveType, leaf: &Leaf) -> Option<Predicate> {
    let typed = |v: &serde_json::Value| typed_literal(ty, v);
    Some(match leaf.op.arity() {
        Arity::None => match leaf.op {
            Op::IsNull => reference.is_null(),
            Op::NotNull => reference.is_not_null(),
            Op::IsNan if matches!(ty, PrimitiveType::Float | PrimitiveType::Double) => {
                reference.is_nan()
            }
            Op::NotNan if matches!(ty, PrimitiveType::Float | PrimitiveType::Double) => {
                reference.is_not_nan()
            }
            _ => return None,
        },
        Arity::One => {
            let value = typed(&leaf.values[0])?;
            match leaf.op {
                Op::Lt => reference.less_than(value),
                Op::LtEq => reference.less_than_or_equal_to(value),
                Op::Gt => reference.greater_than(value),
                Op::GtEq => reference.greater_than_or_equal_to(value),
                Op::Eq => reference.equal_to(value),
                Op::NotEq => reference.not_equal_to(value),
                Op::StartsWith if *ty == PrimitiveType::String => reference.starts_with(value),
                Op::NotStartsWith if *ty == PrimitiveType::String => {
                    reference.not_starts_with(value)
                }
                _ => return None,
            }
        }
        Arity::Many => {
            let values: Option<Vec<Datum>> = leaf.values.iter().map(typed).collect();
            match leaf.op {
                Op::In => reference.is_in(values?),
                _ => reference.is_not_in(values?),
            }
        }
    })
}

/// A literal as sent, as a value of `ty` exactly, or `None` when it is not one (PyIceberg sends
/// binary as lower-case hex, timestamps without a fraction or an offset, times as micros).
pub fn typed_literal(ty: &PrimitiveType, v: &serde_json::Value) -> Option<Datum> {
    use serde_json::Value as J;
    Some(match (ty, v) {
        (PrimitiveType::Boolean, J::Bool(b)) => Datum::bool(*b),
        (PrimitiveType::Int, J::Number(n)) => Datum::int(i32::try_from(n.as_i64()?).ok()?),
        (PrimitiveType::Long, J::Number(n)) => Datum::long(n.as_i64()?),
        (PrimitiveType::Float, J::Number(n)) => {
            let d = n.as_f64()?;
            let f = d as f32;
            (f64::from(f) == d).then_some(Datum::float(f))?
        }
        (PrimitiveType::Double, J::Number(n)) => Datum::double(n.as_f64()?),
        (PrimitiveType::String, J::String(s)) => Datum::string(s),
        (PrimitiveType::Uuid, J::String(s)) => Datum::uuid_from_str(s).ok()?,
        (PrimitiveType::Date, J::String(s)) => Datum::date_from_str(s).ok()?,
        (PrimitiveType::Date, J::Number(n)) => Datum::date(i32::try_from(n.as_i64()?).ok()?),
        (PrimitiveType::Time, J::String(s)) => Datum::time_from_str(s).ok()?,
        (PrimitiveType::Time, J::Number(n)) => Datum::time_micros(n.as_i64()?).ok()?,
        (PrimitiveType::Timestamp, v) => Datum::timestamp_micros(instant(v, false)?),
        (PrimitiveType::Timestamptz, v) => Datum::timestamptz_micros(instant(v, false)?),
        (PrimitiveType::TimestampNs, v) => Datum::timestamp_nanos(instant(v, true)?),
        (PrimitiveType::TimestamptzNs, v) => Datum::timestamptz_nanos(instant(v, true)?),
        (PrimitiveType::Binary, J::String(s)) => Datum::binary(hex::decode(s).ok()?),
        (PrimitiveType::Fixed(len), J::String(s)) => {
            let bytes = hex::decode(s).ok()?;
            (bytes.len() as u64 == *len).then(|| Datum::fixed(bytes))?
        }
        (PrimitiveType::Decimal { precision, scale }, v) => {
            let text = match v {
                J::String(s) => s.clone(),
                J::Number(n) => n.to_string(),
                _ => return None,
            };
            decimal(&text, *precision, *scale)?
        }
        _ => return None,
    })
}

/// A timestamp literal in micro- or nanoseconds since the epoch: a number as it is, or text with
/// or without a fraction and an offset (text without one is UTC).
fn instant(v: &serde_json::Value, nanos: bool) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => {
            let utc = match chrono::DateTime::parse_from_rfc3339(s) {
                Ok(dt) => dt.to_utc(),
                Err(_) => s.parse::<chrono::NaiveDateTime>().ok()?.and_utc(),
            };
            if nanos {
                utc.timestamp_nanos_opt()
            } else {
                Some(utc.timestamp_micros())
            }
        }
        _ => None,
    }
}

/// A decimal literal at exactly the column's scale, or `None` when it has more digits than the
/// scale holds (rounding it could prune a file that matches).
fn decimal(text: &str, precision: u32, scale: u32) -> Option<Datum> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() as u32 > scale
        || whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut mantissa: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    mantissa = mantissa.checked_mul(10i128.checked_pow(scale - fraction.len() as u32)?)?;
    if mantissa.unsigned_abs() >= 10u128.checked_pow(precision)? {
        return None;
    }
    if negative {
        mantissa = -mantissa;
    }
    Datum::try_from_bytes(
        &mantissa.to_be_bytes(),
        PrimitiveType::Decimal { precision, scale },
    )
    .ok()
}

/// A partition value (or any literal) of a primitive type as a `Datum`.
pub fn datum(ty: &PrimitiveType, value: &Literal) -> Option<Datum> {
    let Literal::Primitive(p) = value else {
        return None;
    };
    Some(match (ty, p) {
        (PrimitiveType::Boolean, PrimitiveLiteral::Boolean(b)) => Datum::bool(*b),
        (PrimitiveType::Int, PrimitiveLiteral::Int(v)) => Datum::int(*v),
        (PrimitiveType::Date, PrimitiveLiteral::Int(v)) => Datum::date(*v),
        (PrimitiveType::Long, PrimitiveLiteral::Long(v)) => Datum::long(*v),
        (PrimitiveType::Time, PrimitiveLiteral::Long(v)) => Datum::time_micros(*v).ok()?,
        (PrimitiveType::Timestamp, PrimitiveLiteral::Long(v)) => Datum::timestamp_micros(*v),
        (PrimitiveType::Timestamptz, PrimitiveLiteral::Long(v)) => Datum::timestamptz_micros(*v),
        (PrimitiveType::TimestampNs, PrimitiveLiteral::Long(v)) => Datum::timestamp_nanos(*v),
        (PrimitiveType::TimestamptzNs, PrimitiveLiteral::Long(v)) => Datum::timestamptz_nanos(*v),
        (PrimitiveType::Float, PrimitiveLiteral::Float(v)) => Datum::float(v.0),
        (PrimitiveType::Double, PrimitiveLiteral::Double(v)) => Datum::double(v.0),
        (PrimitiveType::String, PrimitiveLiteral::String(v)) => Datum::string(v),
        (PrimitiveType::Uuid, PrimitiveLiteral::UInt128(v)) => {
            Datum::uuid(uuid::Uuid::from_u128(*v))
        }
        (PrimitiveType::Binary, PrimitiveLiteral::Binary(v)) => Datum::binary(v.iter().copied()),
        (PrimitiveType::Fixed(_), PrimitiveLiteral::Binary(v)) => Datum::fixed(v.iter().copied()),
        (PrimitiveType::Decimal { .. }, PrimitiveLiteral::Int128(v)) => {
            Datum::try_from_bytes(&v.to_be_bytes(), ty.clone()).ok()?
        }
        _ => return None,
    })
}

/// The filter projected onto a spec's partition fields (inclusive: a partition the projection
/// rejects holds no match; strict: a partition it accepts holds only matches).
fn project(
    bound: &BoundPredicate,
    spec: &PartitionSpec,
    strict: bool,
) -> Result<Predicate, PruneError> {
    Ok(match bound {
        BoundPredicate::AlwaysTrue => Predicate::AlwaysTrue,
        BoundPredicate::AlwaysFalse => Predicate::AlwaysFalse,
        BoundPredicate::And(e) => {
            let [a, b] = e.inputs();
            project(a, spec, strict)?.and(project(b, spec, strict)?)
        }
        BoundPredicate::Or(e) => {
            let [a, b] = e.inputs();
            project(a, spec, strict)?.or(project(b, spec, strict)?)
        }
        // No `not` is left after `without_not`; one that binding made says nothing.
        BoundPredicate::Not(_) => {
            if strict {
                Predicate::AlwaysFalse
            } else {
                Predicate::AlwaysTrue
            }
        }
        leaf => {
            let Some(field) = leaf_field(leaf) else {
                return Ok(Predicate::AlwaysTrue);
            };
            let mut projected: Option<Predicate> = None;
            for partition_field in spec.fields().iter().filter(|p| p.source_id == field.id) {
                let one = if strict {
                    partition_field
                        .transform
                        .strict_project(&partition_field.name, leaf)
                } else {
                    partition_field
                        .transform
                        .project(&partition_field.name, leaf)
                }
                .map_err(|e| PruneError(format!("projecting the filter: {e}")))?;
                if let Some(one) = one {
                    projected = Some(match projected {
                        None => one,
                        // Inclusive: every field's projection must hold; strict: any one suffices.
                        Some(p) if strict => p.or(one),
                        Some(p) => p.and(one),
                    });
                }
            }
            projected.unwrap_or(if strict {
                Predicate::AlwaysFalse
            } else {
                Predicate::AlwaysTrue
            })
        }
    })
}

/// The field a leaf predicate tests.
fn leaf_field(p: &BoundPredicate) -> Option<&iceberg::spec::NestedField> {
    match p {
        BoundPredicate::Unary(e) => Some(e.term().field()),
        BoundPredicate::Binary(e) => Some(e.term().field()),
        BoundPredicate::Set(e) => Some(e.term().field()),
        _ => None,
    }
}

/// Evaluates a bound predicate with `leaf` deciding each predicate ("may match").
fn eval(p: &BoundPredicate, leaf: &mut dyn FnMut(&BoundPredicate) -> bool) -> bool {
    match p {
        BoundPredicate::AlwaysTrue => true,
        BoundPredicate::AlwaysFalse => false,
        BoundPredicate::And(e) => {
            let [a, b] = e.inputs();
            eval(a, leaf) && eval(b, leaf)
        }
        BoundPredicate::Or(e) => {
            let [a, b] = e.inputs();
            eval(a, leaf) || eval(b, leaf)
        }
        BoundPredicate::Not(_) => true,
        other => leaf(other),
    }
}

fn cmp(a: &Datum, b: &Datum) -> Option<Ordering> {
    a.partial_cmp(b)
}

/// One predicate against one known value (a partition value; `None` is null), or `None` when
/// it cannot be decided.
fn value_leaf(p: &BoundPredicate, value: Option<&Datum>) -> Option<bool> {
    use PredicateOperator as O;
    Some(match p {
        BoundPredicate::Unary(e) => match e.op() {
            O::IsNull => value.is_none(),
            O::NotNull => value.is_some(),
            O::IsNan => value.is_some_and(Datum::is_nan),
            O::NotNan => !value.is_some_and(Datum::is_nan),
            _ => return None,
        },
        BoundPredicate::Binary(e) => {
            let Some(v) = value else {
                return Some(matches!(e.op(), O::NotEq | O::NotStartsWith));
            };
            let lit = e.literal();
            match e.op() {
                O::StartsWith => starts_with(v, lit)?,
                O::NotStartsWith => !starts_with(v, lit)?,
                op => {
                    let o = cmp(v, lit)?;
                    match op {
                        O::LessThan => o == Ordering::Less,
                        O::LessThanOrEq => o != Ordering::Greater,
                        O::GreaterThan => o == Ordering::Greater,
                        O::GreaterThanOrEq => o != Ordering::Less,
                        O::Eq => o == Ordering::Equal,
                        O::NotEq => o != Ordering::Equal,
                        _ => return None,
                    }
                }
            }
        }
        BoundPredicate::Set(e) => {
            let Some(v) = value else {
                return Some(e.op() == O::NotIn);
            };
            let mut found = false;
            for l in e.literals() {
                if cmp(v, l)? == Ordering::Equal {
                    found = true;
                }
            }
            match e.op() {
                O::In => found,
                O::NotIn => !found,
                _ => return None,
            }
        }
        _ => return None,
    })
}

fn text(d: &Datum) -> Option<&str> {
    match d.literal() {
        PrimitiveLiteral::String(s) => Some(s),
        _ => None,
    }
}

fn starts_with(v: &Datum, prefix: &Datum) -> Option<bool> {
    Some(text(v)?.starts_with(text(prefix)?))
}

/// One predicate of the projected filter against a manifest's summary of that partition field.
fn summary_leaf(p: &BoundPredicate, summary: &FieldSummary, ty: &PrimitiveType) -> bool {
    use PredicateOperator as O;
    let bound = |b: &Option<iceberg::spec::ByteBuf>| {
        b.as_ref()
            .and_then(|b| Datum::try_from_bytes(b, ty.clone()).ok())
    };
    let (lower, upper) = (bound(&summary.lower_bound), bound(&summary.upper_bound));
    // No bounds and nulls: only nulls (and perhaps NaN) in this field.
    let only_nulls = summary.contains_null && lower.is_none() && summary.contains_nan != Some(true);
    match p {
        BoundPredicate::Unary(e) => match e.op() {
            O::IsNull => summary.contains_null,
            O::NotNull => !only_nulls,
            O::IsNan => summary.contains_nan != Some(false),
            _ => true,
        },
        BoundPredicate::Binary(e) => {
            if only_nulls {
                return matches!(e.op(), O::NotEq | O::NotStartsWith);
            }
            let lit = e.literal();
            let below = |b: &Option<Datum>, wanted: &[Ordering]| {
                b.as_ref()
                    .and_then(|b| cmp(b, lit))
                    .is_none_or(|o| wanted.contains(&o))
            };
            match e.op() {
                O::LessThan => below(&lower, &[Ordering::Less]),
                O::LessThanOrEq => below(&lower, &[Ordering::Less, Ordering::Equal]),
                O::GreaterThan => below(&upper, &[Ordering::Greater]),
                O::GreaterThanOrEq => below(&upper, &[Ordering::Greater, Ordering::Equal]),
                O::Eq => {
                    below(&lower, &[Ordering::Less, Ordering::Equal])
                        && below(&upper, &[Ordering::Greater, Ordering::Equal])
                }
                O::StartsWith => prefix_in_range(lit, lower.as_ref(), upper.as_ref()),
                _ => true,
            }
        }
        BoundPredicate::Set(e) if e.op() == O::In => {
            !only_nulls
                && e.literals().iter().any(|lit| {
                    lower
                        .as_ref()
                        .and_then(|l| cmp(l, lit))
                        .is_none_or(|o| o != Ordering::Greater)
                        && upper
                            .as_ref()
                            .and_then(|u| cmp(u, lit))
                            .is_none_or(|o| o != Ordering::Less)
                })
        }
        _ => true,
    }
}

/// Whether strings in `[lower, upper]` may start with `prefix` (bounds may be truncated).
fn prefix_in_range(prefix: &Datum, lower: Option<&Datum>, upper: Option<&Datum>) -> bool {
    let Some(prefix) = text(prefix) else {
        return true;
    };
    let cut = |s: &str| -> String { s.chars().take(prefix.chars().count()).collect() };
    let lower_ok = lower
        .and_then(text)
        .is_none_or(|l| cut(l).as_str() <= prefix);
    let upper_ok = upper
        .and_then(text)
        .is_none_or(|u| cut(u).as_str() >= prefix);
    lower_ok && upper_ok
}

/// One predicate of the filter against a data file's column metrics.
fn metrics_leaf(p: &BoundPredicate, file: &DataFile) -> bool {
    use PredicateOperator as O;
    let Some(field) = leaf_field(p) else {
        return true;
    };
    let id = field.id;
    let values = file.value_counts().get(&id).copied();
    let nulls = file.null_value_counts().get(&id).copied();
    let nans = file.nan_value_counts().get(&id).copied();
    let only_nulls = values.is_some() && values == nulls;
    let only_nans = values.is_some() && nans == values;
    let lower = file.lower_bounds().get(&id).filter(|d| !d.is_nan());
    let upper = file.upper_bounds().get(&id).filter(|d| !d.is_nan());
    match p {
        BoundPredicate::Unary(e) => match e.op() {
            O::IsNull => nulls != Some(0),
            O::NotNull => !only_nulls,
            O::IsNan => nans != Some(0) && !only_nulls,
            O::NotNan => !only_nans,
            _ => true,
        },
        BoundPredicate::Binary(e) => {
            if (only_nulls || only_nans) && !matches!(e.op(), O::NotEq | O::NotStartsWith) {
                return false;
            }
            let lit = e.literal();
            let holds = |b: Option<&Datum>, wanted: &[Ordering]| {
                b.and_then(|b| cmp(b, lit))
                    .is_none_or(|o| wanted.contains(&o))
            };
            match e.op() {
                O::LessThan => holds(lower, &[Ordering::Less]),
                O::LessThanOrEq => holds(lower, &[Ordering::Less, Ordering::Equal]),
                O::GreaterThan => holds(upper, &[Ordering::Greater]),
                O::GreaterThanOrEq => holds(upper, &[Ordering::Greater, Ordering::Equal]),
                O::Eq => {
                    holds(lower, &[Ordering::Less, Ordering::Equal])
                        && holds(upper, &[Ordering::Greater, Ordering::Equal])
                }
                O::StartsWith => prefix_in_range(lit, lower, upper),
                _ => true,
            }
        }
        BoundPredicate::Set(e) if e.op() == O::In => {
            !(only_nulls || only_nans)
                && e.literals().iter().any(|lit| {
                    lower
                        .and_then(|l| cmp(l, lit))
                        .is_none_or(|o| o != Ordering::Greater)
                        && upper
                            .and_then(|u| cmp(u, lit))
                            .is_none_or(|o| o != Ordering::Less)
                })
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn literals_are_typed_as_their_column_exactly_or_not_at_all() {
        let dec = PrimitiveType::Decimal {
            precision: 9,
            scale: 2,
        };
        assert_eq!(
            typed_literal(&dec, &json!("12.3")),
            typed_literal(&dec, &json!("12.30"))
        );
        assert!(
            typed_literal(&dec, &json!("12.345")).is_none(),
            "more digits than the scale"
        );
        assert!(
            typed_literal(&dec, &json!("1234567890")).is_none(),
            "beyond the precision"
        );
        assert_eq!(
            typed_literal(&dec, &json!("-0.5")).map(|d| d.to_human_string()),
            Some("-0.50".into())
        );
        let ts = PrimitiveType::Timestamp;
        let micros = Datum::timestamp_micros(1_700_000_000_000_000);
        assert_eq!(
            typed_literal(&ts, &json!("2023-11-14T22:13:20")),
            Some(micros.clone())
        );
        assert_eq!(
            typed_literal(&ts, &json!("2023-11-14T22:13:20.000000+00:00")),
            Some(micros)
        );
        assert_eq!(
            typed_literal(&PrimitiveType::Time, &json!(3_723_000_000_i64)),
            Datum::time_micros(3_723_000_000).ok()
        );
        assert_eq!(
            typed_literal(&PrimitiveType::Binary, &json!("78797a")),
            typed_literal(&PrimitiveType::Binary, &json!("78797A"))
        );
        assert!(typed_literal(&PrimitiveType::Fixed(2), &json!("78797a")).is_none());
        assert!(
            typed_literal(&PrimitiveType::Float, &json!(0.1)).is_none(),
            "0.1 is no f32"
        );
        assert!(typed_literal(&PrimitiveType::Int, &json!(1_i64 << 40)).is_none());
        assert!(typed_literal(&PrimitiveType::Long, &json!("5")).is_none());
    }

    fn schema() -> SchemaRef {
        use iceberg::spec::NestedField;
        Arc::new(
            Schema::builder()
                .with_fields(vec![
                    NestedField::optional(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                    NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String)).into(),
                ])
                .build()
                .unwrap(),
        )
    }

    fn filter(json: serde_json::Value) -> PruningFilter {
        PruningFilter::new(
            super::super::filter::Filter::parse(&json).unwrap(),
            schema(),
            true,
        )
        .unwrap()
    }

    fn file(lower: i64, upper: i64, nulls: u64) -> DataFile {
        iceberg::spec::DataFileBuilder::default()
            .content(iceberg::spec::DataContentType::Data)
            .file_path("f".to_owned())
            .file_format(iceberg::spec::DataFileFormat::Parquet)
            .file_size_in_bytes(1)
            .record_count(10)
            .partition_spec_id(0)
            .value_counts(HashMap::from([(1, 10)]))
            .null_value_counts(HashMap::from([(1, nulls)]))
            .lower_bounds(HashMap::from([(1, Datum::long(lower))]))
            .upper_bounds(HashMap::from([(1, Datum::long(upper))]))
            .build()
            .unwrap()
    }

    #[test]
    fn a_transform_term_is_tested_on_the_partition_field_with_that_transform() {
        let spec = PartitionSpec::builder(schema())
            .with_spec_id(0)
            .add_partition_field("id", "id_bucket", Transform::Bucket(4))
            .unwrap()
            .add_partition_field("name", "name_trunc", Transform::Truncate(2))
            .unwrap()
            .build()
            .unwrap();
        let partition = |bucket: i32, prefix: &str| {
            Struct::from_iter([Some(Literal::int(bucket)), Some(Literal::string(prefix))])
        };
        let bucket = json!({"type": "transform", "transform": "bucket[4]", "term": "id"});
        let pruning = filter(json!({"type": "eq", "term": bucket.clone(), "value": 3}));
        let mut on_spec = pruning.on_spec(&spec).unwrap();
        assert!(on_spec.partition_may_match(&partition(3, "ab")));
        assert!(!on_spec.partition_may_match(&partition(1, "ab")));
        assert_eq!(
            pruning.residual(&mut on_spec, &partition(3, "ab")),
            json!(true)
        );
        assert_eq!(
            pruning.residual(&mut on_spec, &partition(2, "ab")),
            json!(false)
        );
        // A null partition value holds rows whose transform is null: never equal to 3.
        let nulls = Struct::from_iter([None, Some(Literal::string("ab"))]);
        assert!(!on_spec.partition_may_match(&nulls));
        assert_eq!(pruning.residual(&mut on_spec, &nulls), json!(false));
        // Under `or` with a column predicate the spec also projects.
        let pruning = filter(json!({"type": "or",
            "left": {"type": "eq", "term": bucket.clone(), "value": 3},
            "right": {"type": "starts-with", "term": "name", "value": "xy"}}));
        let on_spec = pruning.on_spec(&spec).unwrap();
        assert!(on_spec.partition_may_match(&partition(3, "ab")));
        assert!(on_spec.partition_may_match(&partition(0, "xy")));
        assert!(!on_spec.partition_may_match(&partition(0, "ab")));
        // Another transform of the column (no such field), or a literal of the wrong type:
        // nothing pruned; and never against column metrics.
        for other in [
            json!({"type": "eq", "term": {"type": "transform", "transform": "bucket[8]", "term": "id"}, "value": 3}),
            json!({"type": "eq", "term": bucket.clone(), "value": "three"}),
        ] {
            let on_spec = filter(other).on_spec(&spec).unwrap();
            assert!(on_spec.partition_may_match(&partition(1, "ab")));
        }
        assert!(pruning.metrics_may_match(&file(100, 200, 0)));
    }

    #[test]
    fn metrics_prune_only_what_cannot_match() {
        let f = file(10, 20, 0);
        let may = |j: serde_json::Value| filter(j).metrics_may_match(&f);
        assert!(may(json!({"type": "eq", "term": "id", "value": 15})));
        assert!(!may(json!({"type": "eq", "term": "id", "value": 21})));
        assert!(!may(json!({"type": "lt", "term": "id", "value": 10})));
        assert!(may(json!({"type": "lt-eq", "term": "id", "value": 10})));
        assert!(!may(json!({"type": "gt", "term": "id", "value": 20})));
        assert!(may(json!({"type": "not-eq", "term": "id", "value": 15})));
        assert!(!may(
            json!({"type": "in", "term": "id", "values": [1, 2, 30]})
        ));
        assert!(
            !may(json!({"type": "is-null", "term": "id"})),
            "no nulls counted"
        );
        assert!(may(
            json!({"type": "not", "child": {"type": "gt", "term": "id", "value": 20}})
        ));
        assert!(!may(
            json!({"type": "not", "child": {"type": "lt-eq", "term": "id", "value": 25}})
        ));
        // A column without metrics, and a transform term: never pruned.
        assert!(may(json!({"type": "eq", "term": "name", "value": "x"})));
        assert!(may(
            json!({"type": "eq", "term": {"type": "transform", "transform": "bucket[4]", "term": "id"}, "value": 3})
        ));
        assert!(
            filter(json!({"type": "is-null", "term": "id"})).metrics_may_match(&file(10, 20, 3))
        );
        assert!(
            PruningFilter::new(
                super::super::filter::Filter::parse(
                    &json!({"type": "eq", "term": "nope", "value": 1})
                )
                .unwrap(),
                schema(),
                true
            )
            .is_err()
        );
    }
}
