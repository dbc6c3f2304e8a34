//! A scan's row filter as clients send it, parsed from either JSON form of the REST spec and
//! written back in the form every client reads (for residuals).
//!
//! - The form PyIceberg 0.12 and Iceberg Java 1.11 send: `{"type":"eq","term":"id","value":5}`,
//!   `"values"` for sets, a term that is a column name or `{"type":"transform","transform":"day",
//!   "term":"ts"}` (or `{"type":"reference","term":"id"}`), `and`/`or` with `left`/`right`, `not`
//!   with `child`, and bare `true`/`false`.
//! - The newer form: comparisons with `left` (a reference) and `right` (a literal), unary and set
//!   predicates with `child`, references `{"type":"reference","name":..}`, literals wrapped as
//!   `{"type":"literal","value":..}`, and `{"type":"true"}`/`{"type":"false"}`.
//!
//! Literals stay as sent: they are typed only against the scanned schema
//! ([`super::prune::PruningFilter`]), and a residual repeats exactly what the client sent.

use serde_json::{Map, Value, json};

/// What a filter failed on; the message names the part and is fit for a 400.
#[derive(Debug, thiserror::Error)]
#[error("invalid filter: {0}")]
pub struct FilterError(pub String);

fn invalid(what: impl Into<String>) -> FilterError {
    FilterError(what.into())
}

/// The deepest nesting of `and`/`or`/`not` accepted (a filter is walked recursively).
pub const MAX_DEPTH: usize = 64;

/// A predicate's operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    IsNull,
    NotNull,
    IsNan,
    NotNan,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Eq,
    NotEq,
    StartsWith,
    NotStartsWith,
    In,
    NotIn,
}

/// How many values an operation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    None,
    One,
    Many,
}

impl Op {
    const ALL: [(Op, &'static str); 14] = [
        (Op::IsNull, "is-null"),
        (Op::NotNull, "not-null"),
        (Op::IsNan, "is-nan"),
        (Op::NotNan, "not-nan"),
        (Op::Lt, "lt"),
        (Op::LtEq, "lt-eq"),
        (Op::Gt, "gt"),
        (Op::GtEq, "gt-eq"),
        (Op::Eq, "eq"),
        (Op::NotEq, "not-eq"),
        (Op::StartsWith, "starts-with"),
        (Op::NotStartsWith, "not-starts-with"),
        (Op::In, "in"),
        (Op::NotIn, "not-in"),
    ];

    fn parse(name: &str) -> Option<Op> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(op, _)| *op)
    }

    /// The spec's name of the operation.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(op, _)| *op == self)
            .map_or("", |(_, n)| n)
    }

    pub fn arity(self) -> Arity {
        match self {
            Op::IsNull | Op::NotNull | Op::IsNan | Op::NotNan => Arity::None,
            Op::In | Op::NotIn => Arity::Many,
            _ => Arity::One,
        }
    }

    /// The operation that holds exactly where this one does not (NaN and null as Iceberg's
    /// expressions treat them).
    pub fn negate(self) -> Op {
        match self {
            Op::IsNull => Op::NotNull,
            Op::NotNull => Op::IsNull,
            Op::IsNan => Op::NotNan,
            Op::NotNan => Op::IsNan,
            Op::Lt => Op::GtEq,
            Op::LtEq => Op::Gt,
            Op::Gt => Op::LtEq,
            Op::GtEq => Op::Lt,
            Op::Eq => Op::NotEq,
            Op::NotEq => Op::Eq,
            Op::StartsWith => Op::NotStartsWith,
            Op::NotStartsWith => Op::StartsWith,
            Op::In => Op::NotIn,
            Op::NotIn => Op::In,
        }
    }
}

/// What a predicate tests: a column, or a transform of one.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Column(String),
    Transform { transform: String, column: String },
}

impl Term {
    /// The column the term reads.
    pub fn column(&self) -> &str {
        match self {
            Term::Column(c) | Term::Transform { column: c, .. } => c,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Term::Column(c) => Value::String(c.clone()),
            Term::Transform { transform, column } => {
                json!({"type": "transform", "transform": transform, "term": column})
            }
        }
    }
}

/// One predicate on a term, with its values as the client sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub op: Op,
    pub term: Term,
    pub values: Vec<Value>,
}

/// A row filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    True,
    False,
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Leaf(Leaf),
}

impl Filter {
    /// Parses either JSON form.
    pub fn parse(json: &Value) -> Result<Filter, FilterError> {
        parse(json, 0)
    }

    /// The same filter with every `not` pushed down to the predicates (De Morgan), so that a
    /// predicate replaced by `true` (one that cannot be used to prune) never ends up negated.
    pub fn without_not(self) -> Filter {
        self.pushed(false)
    }

    fn pushed(self, negated: bool) -> Filter {
        match (self, negated) {
            (Filter::True, false) | (Filter::False, true) => Filter::True,
            (Filter::False, false) | (Filter::True, true) => Filter::False,
            (Filter::Not(inner), n) => inner.pushed(!n),
            (Filter::And(a, b), false) => {
                Filter::And(a.pushed(false).into(), b.pushed(false).into())
            }
            (Filter::Or(a, b), false) => Filter::Or(a.pushed(false).into(), b.pushed(false).into()),
            (Filter::And(a, b), true) => Filter::Or(a.pushed(true).into(), b.pushed(true).into()),
            (Filter::Or(a, b), true) => Filter::And(a.pushed(true).into(), b.pushed(true).into()),
            (Filter::Leaf(leaf), false) => Filter::Leaf(leaf),
            (Filter::Leaf(leaf), true) => Filter::Leaf(Leaf {
                op: leaf.op.negate(),
                ..leaf
            }),
        }
    }

    /// `a and b`, folding constants.
    pub fn and(a: Filter, b: Filter) -> Filter {
        match (a, b) {
            (Filter::False, _) | (_, Filter::False) => Filter::False,
            (Filter::True, x) | (x, Filter::True) => x,
            (a, b) => Filter::And(a.into(), b.into()),
        }
    }

    /// `a or b`, folding constants.
    pub fn or(a: Filter, b: Filter) -> Filter {
        match (a, b) {
            (Filter::True, _) | (_, Filter::True) => Filter::True,
            (Filter::False, x) | (x, Filter::False) => x,
            (a, b) => Filter::Or(a.into(), b.into()),
        }
    }

    /// The filter in the form PyIceberg 0.12 and Iceberg Java 1.11 read.
    pub fn to_json(&self) -> Value {
        match self {
            Filter::True => Value::Bool(true),
            Filter::False => Value::Bool(false),
            Filter::And(a, b) => json!({"type": "and", "left": a.to_json(), "right": b.to_json()}),
            Filter::Or(a, b) => json!({"type": "or", "left": a.to_json(), "right": b.to_json()}),
            Filter::Not(c) => json!({"type": "not", "child": c.to_json()}),
            Filter::Leaf(leaf) => {
                let mut out = Map::new();
                out.insert("type".into(), leaf.op.name().into());
                out.insert("term".into(), leaf.term.to_json());
                match leaf.op.arity() {
                    Arity::None => {}
                    Arity::One => {
                        out.insert("value".into(), leaf.values[0].clone());
                    }
                    Arity::Many => {
                        out.insert("values".into(), Value::Array(leaf.values.clone()));
                    }
                }
                Value::Object(out)
            }
        }
    }

    /// Every predicate, in order.
    pub fn leaves(&self) -> Vec<&Leaf> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a Leaf>) {
        match self {
            Filter::True | Filter::False => {}
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
            Filter::Not(c) => c.collect(out),
            Filter::Leaf(l) => out.push(l),
        }
    }
}

fn parse(json: &Value, depth: usize) -> Result<Filter, FilterError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let object = match json {
        Value::Bool(true) => return Ok(Filter::True),
        Value::Bool(false) => return Ok(Filter::False),
        Value::Object(o) => o,
        other => return Err(invalid(format!("expected an expression, found {other}"))),
    };
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("an expression has no \"type\""))?;
    let child = |key: &str| {
        object
            .get(key)
            .ok_or_else(|| invalid(format!("\"{kind}\" needs \"{key}\"")))
            .and_then(|v| parse(v, depth + 1))
    };
    match kind {
        "true" => Ok(Filter::True),
        "false" => Ok(Filter::False),
        "literal" => match object.get("value") {
            Some(Value::Bool(b)) => Ok(if *b { Filter::True } else { Filter::False }),
            _ => Err(invalid("a literal expression must be a boolean")),
        },
        "and" => Ok(Filter::And(child("left")?.into(), child("right")?.into())),
        "or" => Ok(Filter::Or(child("left")?.into(), child("right")?.into())),
        "not" => Ok(Filter::Not(child("child")?.into())),
        name => {
            let op = Op::parse(name)
                .ok_or_else(|| invalid(format!("unknown expression type \"{name}\"")))?;
            Ok(Filter::Leaf(leaf(op, object)?))
        }
    }
}

fn leaf(op: Op, object: &Map<String, Value>) -> Result<Leaf, FilterError> {
    let name = op.name();
    // The term: `term` (older form), or `left`/`child` (newer form).
    let term = match (object.get("term"), object.get("left"), object.get("child")) {
        (Some(t), None, None) => term(t)?,
        (None, Some(t), None) if op.arity() == Arity::One => term(t)?,
        (None, None, Some(t)) if op.arity() != Arity::One => term(t)?,
        _ => return Err(invalid(format!("\"{name}\" needs exactly one term"))),
    };
    let values = match op.arity() {
        Arity::None => {
            if object.contains_key("value") || object.contains_key("values") {
                return Err(invalid(format!("\"{name}\" takes no value")));
            }
            Vec::new()
        }
        Arity::One => {
            let value = object
                .get("value")
                .or_else(|| object.get("right"))
                .ok_or_else(|| invalid(format!("\"{name}\" needs a value")))?;
            vec![literal(value)?]
        }
        Arity::Many => match object.get("values") {
            Some(Value::Array(values)) => values.iter().map(literal).collect::<Result<_, _>>()?,
            Some(Value::Object(o)) if o.get("type").and_then(Value::as_str) == Some("literals") => {
                match o.get("values") {
                    Some(Value::Array(values)) => values.clone(),
                    _ => return Err(invalid("\"literals\" needs a \"values\" array")),
                }
            }
            _ => return Err(invalid(format!("\"{name}\" needs a \"values\" array"))),
        },
    };
    if values.iter().any(Value::is_null) {
        return Err(invalid(format!(
            "\"{name}\" compares with null: use is-null or not-null"
        )));
    }
    Ok(Leaf { op, term, values })
}

fn term(json: &Value) -> Result<Term, FilterError> {
    match json {
        Value::String(column) => Ok(Term::Column(column.clone())),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("reference") => o
                .get("term")
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .map(|c| Term::Column(c.to_owned()))
                .ok_or_else(|| invalid("a reference needs a column name")),
            Some("transform") => {
                let transform = o
                    .get("transform")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("a transform term needs \"transform\""))?;
                let Term::Column(column) = term(o.get("term").unwrap_or(&Value::Null))? else {
                    return Err(invalid("a transform's term must be a column"));
                };
                Ok(Term::Transform {
                    transform: transform.to_owned(),
                    column,
                })
            }
            _ => Err(invalid(format!("unsupported term {json}"))),
        },
        other => Err(invalid(format!("unsupported term {other}"))),
    }
}

fn literal(json: &Value) -> Result<Value, FilterError> {
    match json {
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("literal") => o
            .get("value")
            .cloned()
            .ok_or_else(|| invalid("a literal needs a \"value\"")),
        Value::Object(_) | Value::Array(_) => Err(invalid(format!("unsupported literal {json}"))),
        v => Ok(v.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_to_the_same_filter() {
        let older = json!({"type": "and",
            "left": {"type": "eq", "term": "id", "value": 5},
            "right": {"type": "not", "child": {"type": "in", "term": "b", "values": [1, 2]}}});
        let newer = json!({"type": "and",
            "left": {"type": "eq", "left": {"type": "reference", "name": "id"}, "right": {"type": "literal", "value": 5}},
            "right": {"type": "not", "child": {"type": "in", "child": {"type": "reference", "name": "b"},
                                                 "values": {"type": "literals", "values": [1, 2], "data-type": "long"}}}});
        assert_eq!(
            Filter::parse(&older).unwrap(),
            Filter::parse(&newer).unwrap()
        );
        assert_eq!(Filter::parse(&older).unwrap().to_json(), older);
    }

    #[test]
    fn transforms_nulls_and_depth() {
        let f = Filter::parse(&json!({"type": "eq",
            "term": {"type": "transform", "transform": "day", "term": "ts"}, "value": "2024-01-01"}))
        .unwrap();
        assert_eq!(
            f.leaves()[0].term,
            Term::Transform {
                transform: "day".into(),
                column: "ts".into()
            }
        );
        assert!(Filter::parse(&json!({"type": "eq", "term": "a", "value": null})).is_err());
        assert!(Filter::parse(&json!({"type": "is-null", "term": "a", "value": 1})).is_err());
        assert!(Filter::parse(&json!({"type": "between", "term": "a"})).is_err());
        let mut deep = json!(true);
        for _ in 0..=MAX_DEPTH {
            deep = json!({"type": "not", "child": deep});
        }
        assert!(Filter::parse(&deep).is_err());
        assert_eq!(
            Filter::parse(&json!({"type": "true"})).unwrap(),
            Filter::True
        );
    }

    #[test]
    fn not_is_pushed_down_to_the_predicates() {
        let f = Filter::parse(&json!({"type": "not", "child": {"type": "or",
            "left": {"type": "lt", "term": "a", "value": 1},
            "right": {"type": "not", "child": {"type": "is-null", "term": "b"}}}}))
        .unwrap()
        .without_not();
        assert_eq!(
            f.to_json(),
            json!({"type": "and",
                "left": {"type": "gt-eq", "term": "a", "value": 1},
                "right": {"type": "is-null", "term": "b"}})
        );
    }
}
