//! A model of the framework's `WazuhDBQuery` (wazuh 4.14.7 `framework/wazuh/core/utils.py`), which
//! turns the list parameters into SQL over wazuh-db: `select` checked against the table's fields
//! (1724), legacy filters and `q` compiled into conditions (1407, 1408, 1409, 1412), `search` as a
//! case-insensitive `LIKE` over every field, `sort` checked (1403) and applied with SQLite's
//! ordering, then `offset`/`limit`. The conditions are evaluated the way SQLite would evaluate the
//! generated `WHERE` clause, including its precedence: the legacy filters, the `q` terms and the
//! search are chained without parentheses around `q`, so an `OR` in `q` reaches past them.

use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::{Map, Value};

/// A wazuh-db column value. Dates are epoch seconds, as they are stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Sql {
    Null,
    Int(i64),
    Text(String),
}

impl Sql {
    pub(super) fn text(s: impl Into<String>) -> Sql {
        Sql::Text(s.into())
    }

    /// An optional text: `None` is a NULL column, which the API leaves out of items.
    pub(super) fn opt(s: Option<impl Into<String>>) -> Sql {
        s.map_or(Sql::Null, |s| Sql::Text(s.into()))
    }

    /// The value as SQLite renders it for `LIKE`.
    fn as_text(&self) -> Option<String> {
        match self {
            Sql::Null => None,
            Sql::Int(i) => Some(i.to_string()),
            Sql::Text(s) => Some(s.clone()),
        }
    }
}

/// Which framework query class a table follows; each has its quirks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Agents,
    Syscheck,
    Syscollector,
}

pub(super) struct Table {
    pub kind: Kind,
    /// The API names of the columns, in the order items show them.
    pub fields: &'static [&'static str],
    /// Prefixes of dotted fields that items nest (`os.name` → `{"os":{"name":…}}`).
    pub nested: &'static [&'static str],
    /// Fields that filters compare as dates (timeframes or absolute dates).
    pub dates: &'static [&'static str],
    /// Fields every item carries whatever `select` says.
    pub min_select: &'static [&'static str],
    /// `ORDER BY` without `sort`; `None` keeps storage order (syscollector's `scan_id` is the
    /// same for every row).
    pub default_sort: Option<&'static str>,
    /// Turns a column into the item's JSON value.
    pub render: fn(&str, &Sql) -> Value,
}

impl Table {
    fn index(&self, field: &str) -> Option<usize> {
        self.fields.iter().position(|f| *f == field)
    }
}

/// A framework error: answered as a 400 problem by the API (`WazuhError`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WazuhError {
    pub code: u32,
    pub message: String,
    pub remediation: Option<&'static str>,
}

impl WazuhError {
    /// The error `code` with the framework's message, and `extra` after a colon as
    /// `WazuhException` appends it.
    pub(super) fn new(code: u32, extra: Option<String>) -> WazuhError {
        let (base, remediation) = match code {
            1403 => ("Not a valid sort field", Some("Please, use only allowed sort fields")),
            1407 => ("Query does not match expected format", None),
            1408 => ("Field does not exist", None),
            1409 => ("Invalid query operator", None),
            1411 => ("TimeFrame is not valid", None),
            1412 => ("Date filter not valid. Valid formats are YYYY-MM-DD HH:mm:ss, YYYY-MM-DDTHH:mm:ssZ or YYYY-MM-DD", None),
            1701 => ("Agent does not exist", Some("Please, use `GET /agents?select=id,name` to find all available agents")),
            1724 => ("Not a valid select field", Some("Please, use only allowed select fields")),
            2007 => ("Error retrieving data from Wazuh DB", None),
            _ => ("Wazuh Internal Error", None),
        };
        let message = match extra {
            Some(extra) => format!("{base}: {extra}"),
            None => base.to_string(),
        };
        WazuhError { code, message, remediation }
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct Sort {
    pub fields: Vec<String>,
    pub desc: bool,
}

impl Sort {
    /// `+a,b` / `-a,b`: the sign of the first field orders them all, as `_parse_sort_param` does.
    pub(super) fn parse(sort: &str) -> Sort {
        let desc = sort.starts_with('-');
        let rest = sort.strip_prefix(['-', '+']).unwrap_or(sort);
        Sort { fields: rest.split(',').map(str::to_string).collect(), desc }
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct Search {
    pub value: String,
    pub negate: bool,
}

impl Search {
    /// A leading `-` asks for the items that do not contain the rest.
    pub(super) fn parse(search: &str) -> Search {
        match search.strip_prefix('-') {
            Some(rest) => Search { value: rest.to_string(), negate: true },
            None => Search { value: search.to_string(), negate: false },
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(super) struct Query {
    pub offset: usize,
    pub limit: usize,
    pub sort: Option<Sort>,
    pub search: Option<Search>,
    pub select: Option<Vec<String>>,
    /// Legacy filters (`status=…`, `name=…`): field and the values any of which may match.
    pub filters: Vec<(String, Vec<String>)>,
    pub q: String,
    pub distinct: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Like,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Like => "LIKE",
        }
    }
}

#[derive(Clone, Debug)]
enum Cond {
    /// `field op value COLLATE NOCASE`; `LIKE` wraps the value in `%` unless `exact`.
    Cmp {
        idx: usize,
        op: Op,
        value: String,
        exact: bool,
    },
    IsNull {
        idx: usize,
    },
    /// `field IS NOT NULL AND field <op> threshold`; agents add `AND id != 0`.
    Date {
        idx: usize,
        op: Op,
        at: Option<i64>,
        not_manager: Option<usize>,
    },
    /// The agents' `group` column holds a comma-separated list.
    Group {
        idx: usize,
        op: Op,
        value: String,
    },
    Search {
        idxs: Vec<usize>,
        pattern: String,
        id: Option<(usize, String)>,
        negate: bool,
    },
}

#[derive(Clone, Debug)]
enum Tok {
    Open,
    Close,
    And,
    Or,
    Cond(Cond),
}

/// The matching rows' items (one page) and how many rows matched in all.
pub(super) struct Page {
    pub items: Vec<Map<String, Value>>,
    pub total: usize,
}

/// Runs `query` over `rows` (each aligned with `table.fields`); `allowed` are the fields that
/// may be selected, filtered and sorted on (syscheck's summary narrows them).
pub(super) fn run(table: &Table, allowed: &[&'static str], rows: &[Vec<Sql>], query: &Query, now: i64) -> Result<Page, WazuhError> {
    let select = select_fields(allowed, query.select.as_deref())?;
    let mut toks = legacy_filters(table, &query.filters, now)?;
    if !query.q.is_empty() {
        if !toks.is_empty() {
            toks.push(Tok::And);
        }
        toks.extend(parse_q(table, allowed, &query.q, now)?);
    }
    if let Some(search) = &query.search {
        if !toks.is_empty() {
            toks.push(Tok::And);
        }
        toks.push(Tok::Cond(search_cond(table, allowed, search)));
    }
    let mut matched: Vec<&Vec<Sql>> = rows.iter().filter(|row| toks.is_empty() || Eval { toks: &toks, pos: 0, row }.run()).collect();

    let mut out_fields: Vec<&str> = select.clone();
    if query.distinct {
        // `SELECT DISTINCT` of the selected fields only, none of them NULL or empty.
        let idxs: Vec<usize> = select.iter().filter_map(|f| table.index(f)).collect();
        let mut seen: HashSet<Vec<&Sql>> = HashSet::new();
        matched.retain(|row| {
            let key: Vec<&Sql> = idxs.iter().map(|&i| &row[i]).collect();
            let blank = key.iter().any(|v| matches!(v, Sql::Null) || matches!(v, Sql::Text(s) if s.is_empty()));
            !blank && seen.insert(key)
        });
    } else {
        for f in table.min_select {
            if !out_fields.contains(f) {
                out_fields.push(f);
            }
        }
    }
    let total = matched.len();

    let order = sort_keys(table, allowed, query.sort.as_ref())?;
    if let Some((keys, desc)) = &order {
        matched.sort_by(|a, b| {
            let o = keys.iter().map(|k| k.cmp(a, b)).find(|o| o.is_ne()).unwrap_or(Ordering::Equal);
            if *desc { o.reverse() } else { o }
        });
    }
    let mut page: Vec<&Vec<Sql>> = matched.into_iter().skip(query.offset).take(query.limit).collect();
    // The agents' listing re-sorts its page by parsed version numbers when asked for `version`.
    if let (Kind::Agents, Some(sort)) = (table.kind, &query.sort)
        && sort.fields.iter().any(|f| f == "version")
    {
        let idxs: Vec<Option<usize>> = sort.fields.iter().map(|f| table.index(f)).collect();
        page.sort_by(|a, b| {
            let o = sort
                .fields
                .iter()
                .zip(&idxs)
                .filter_map(|(f, i)| i.map(|i| version_key(f, &a[i]).cmp(&version_key(f, &b[i]))))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal);
            if sort.desc { o.reverse() } else { o }
        });
    }
    let items = page.into_iter().map(|row| render(table, &out_fields, row)).collect();
    Ok(Page { items, total })
}

fn select_fields(allowed: &[&'static str], select: Option<&[String]>) -> Result<Vec<&'static str>, WazuhError> {
    let Some(select) = select else { return Ok(allowed.to_vec()) };
    let invalid: Vec<&str> = select.iter().map(String::as_str).filter(|f| !allowed.contains(f)).collect();
    if select.is_empty() || !invalid.is_empty() {
        return Err(WazuhError::new(
            1724,
            Some(format!("Allowed select fields: {}. Fields: {}", sorted(allowed).join(", "), dedup(&invalid).join(", "))),
        ));
    }
    Ok(allowed.iter().copied().filter(|f| select.iter().any(|s| s == f)).collect())
}

fn sorted(fields: &[&'static str]) -> Vec<&'static str> {
    let mut v = fields.to_vec();
    v.sort_unstable();
    v
}

fn dedup<'a>(items: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for i in items {
        if !out.contains(i) {
            out.push(i);
        }
    }
    out
}

fn legacy_filters(table: &Table, filters: &[(String, Vec<String>)], now: i64) -> Result<Vec<Tok>, WazuhError> {
    let mut toks = Vec::new();
    for (field, values) in filters {
        // "all" is no filter at all.
        let values: Vec<&String> = values.iter().filter(|v| *v != "all").collect();
        let Some(idx) = table.index(field) else { continue };
        if values.is_empty() {
            continue;
        }
        if !toks.is_empty() {
            toks.push(Tok::And);
        }
        toks.push(Tok::Open);
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                toks.push(Tok::Or);
            }
            toks.push(Tok::Cond(condition(table, field, idx, Op::Eq, value, now)?));
        }
        toks.push(Tok::Close);
    }
    Ok(toks)
}

/// One filter as `_clean_filter` and `_process_filter` turn it into SQL.
fn condition(table: &Table, field: &str, idx: usize, op: Op, value: &str, now: i64) -> Result<Cond, WazuhError> {
    if value == "null" {
        return Ok(Cond::IsNull { idx });
    }
    // Quotes become single-character wildcards and the comparison a LIKE.
    let (op, value, exact) = if value.contains(['\'', '"']) {
        (Op::Like, value.replace(['\'', '"'], "_"), op != Op::Like)
    } else {
        (op, value.to_string(), false)
    };
    if table.dates.contains(&field) {
        return date_condition(table, idx, op, &value, now);
    }
    if table.kind == Kind::Agents && field == "group" {
        if op == Op::Lt || op == Op::Gt {
            let extra = format!("Valid operators for 'group' field: =, !=, ~. Used operator: {}", op.sql());
            return Err(WazuhError::new(1409, Some(extra)));
        }
        return Ok(Cond::Group { idx, op, value });
    }
    Ok(Cond::Cmp { idx, op, value, exact })
}

fn date_condition(table: &Table, idx: usize, op: Op, value: &str, now: i64) -> Result<Cond, WazuhError> {
    let not_manager = (table.kind == Kind::Agents).then(|| table.index("id")).flatten();
    if let Some(seconds) = timeframe(value) {
        // A timeframe compares with `now - timeframe`: `<` and `=` mean "more recent than".
        let op = if op == Op::Lt || op == Op::Eq { Op::Gt } else { Op::Lt };
        return Ok(Cond::Date { idx, op, at: Some(now - seconds), not_manager });
    }
    if date_prefix(value) {
        let op = if op == Op::Like { Op::Eq } else { op };
        return Ok(Cond::Date { idx, op, at: parse_date(value), not_manager });
    }
    Err(WazuhError::new(1412, Some(value.to_string())))
}

/// Seconds in `10`, `30s`, `15m`, `2h` or `7d` (only the leading match counts, as `re.match`).
pub(super) fn timeframe(value: &str) -> Option<i64> {
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let n: i64 = value[..digits].parse().ok()?;
    match value[digits..].chars().next() {
        None => Some(n),
        Some('s') => Some(n),
        Some('m') => Some(n * 60),
        Some('h') => Some(n * 3600),
        Some('d') => Some(n * 86400),
        Some(_) if value.bytes().all(|b| b.is_ascii_digit()) => Some(n),
        Some(_) => None,
    }
}

fn date_prefix(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'-'
        && b[8..10].iter().all(u8::is_ascii_digit)
}

/// What SQLite's `strftime('%s', value)` gives; `None` (NULL) when it cannot read the value.
fn parse_date(value: &str) -> Option<i64> {
    let v = value.strip_suffix('Z').unwrap_or(value);
    if v.len() == 10 {
        return NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp());
    }
    let v = v.replacen('T', " ", 1);
    NaiveDateTime::parse_from_str(&v, "%Y-%m-%d %H:%M:%S%.f").ok().map(|d| d.and_utc().timestamp())
}

/// Tokenizes `q` as the framework's query regex reads it: `(`… field operator value `)`…
/// separated by `;` (AND) or `,` (OR).
fn parse_q(table: &Table, allowed: &[&'static str], q: &str, now: i64) -> Result<Vec<Tok>, WazuhError> {
    let bad = || WazuhError::new(1407, Some(q.to_string()));
    let chars: Vec<char> = q.chars().collect();
    let mut i = 0;
    let mut toks = Vec::new();
    let mut depth = 0i32;
    loop {
        while chars.get(i) == Some(&'(') {
            toks.push(Tok::Open);
            depth += 1;
            i += 1;
        }
        let start = i;
        while chars.get(i).is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.') {
            i += 1;
        }
        let field: String = chars[start..i].iter().collect();
        let op_start = i;
        while i - op_start < 2 && chars.get(i).is_some_and(|c| "=!<>~".contains(*c)) {
            i += 1;
        }
        let op: String = chars[op_start..i].iter().collect();
        let value_start = i;
        let mut bracket = false;
        while let Some(&c) = chars.get(i) {
            let ok = match c {
                '[' => {
                    bracket = true;
                    true
                }
                ']' => {
                    bracket = false;
                    true
                }
                ',' => bracket,
                c if c.is_alphanumeric() => true,
                _ => "_ -.:?\\/'\"=@%<>{}$".contains(c),
            };
            if !ok {
                break;
            }
            i += 1;
        }
        let value: String = chars[value_start..i].iter().collect();
        if field.is_empty() || op.is_empty() || value.is_empty() {
            return Err(bad());
        }
        if !allowed.contains(&field.as_str()) {
            let extra = format!("Available fields: {}. Field: {field}", sorted(allowed).join(", "));
            return Err(WazuhError::new(1408, Some(extra)));
        }
        let op = match op.as_str() {
            "=" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            ">" => Op::Gt,
            "~" => Op::Like,
            other => {
                let extra = format!("Valid operators: =, !=, <, >, ~. Used operator: {other}");
                return Err(WazuhError::new(1409, Some(extra)));
            }
        };
        let idx = table.index(&field).ok_or_else(bad)?;
        toks.push(Tok::Cond(condition(table, &field, idx, op, &value, now)?));
        while chars.get(i) == Some(&')') {
            toks.push(Tok::Close);
            depth -= 1;
            i += 1;
        }
        if depth < 0 {
            return Err(bad());
        }
        match chars.get(i) {
            None => break,
            Some(';') => toks.push(Tok::And),
            Some(',') => toks.push(Tok::Or),
            Some(_) => return Err(bad()),
        }
        i += 1;
        if i == chars.len() {
            return Err(bad());
        }
    }
    if depth != 0 {
        return Err(bad());
    }
    Ok(toks)
}

fn search_cond(table: &Table, allowed: &[&'static str], search: &Search) -> Cond {
    let value = search.value.replace(['\'', '"'], "_");
    let agents = table.kind == Kind::Agents;
    // Agents search every column but `id`, which is matched as a number.
    let idxs = allowed.iter().filter(|f| !(agents && **f == "id")).filter_map(|f| table.index(f)).collect();
    let id = if agents {
        let id_value = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            value.trim_start_matches('0').to_string()
        } else {
            value.clone()
        };
        let id_value = if id_value.is_empty() && !value.is_empty() { "0".to_string() } else { id_value };
        table.index("id").map(|i| (i, id_value))
    } else {
        None
    };
    Cond::Search { idxs, pattern: format!("%{value}%"), id, negate: search.negate }
}

/// Recursive descent over the condition tokens with SQL's precedence: AND binds tighter than OR.
struct Eval<'a> {
    toks: &'a [Tok],
    pos: usize,
    row: &'a [Sql],
}

impl Eval<'_> {
    fn run(&mut self) -> bool {
        self.or()
    }

    fn or(&mut self) -> bool {
        let mut value = self.and();
        while matches!(self.toks.get(self.pos), Some(Tok::Or)) {
            self.pos += 1;
            let rhs = self.and();
            value = value || rhs;
        }
        value
    }

    fn and(&mut self) -> bool {
        let mut value = self.unary();
        while matches!(self.toks.get(self.pos), Some(Tok::And)) {
            self.pos += 1;
            let rhs = self.unary();
            value = value && rhs;
        }
        value
    }

    fn unary(&mut self) -> bool {
        match self.toks.get(self.pos) {
            Some(Tok::Open) => {
                self.pos += 1;
                let value = self.or();
                if matches!(self.toks.get(self.pos), Some(Tok::Close)) {
                    self.pos += 1;
                }
                value
            }
            Some(Tok::Cond(cond)) => {
                self.pos += 1;
                eval(cond, self.row)
            }
            _ => false,
        }
    }
}

/// A condition on a row. SQL's NULL is false here: no condition is ever negated as a whole, so
/// the outcome is the same as three-valued logic's.
fn eval(cond: &Cond, row: &[Sql]) -> bool {
    match cond {
        Cond::IsNull { idx } => row[*idx] == Sql::Null,
        Cond::Cmp { idx, op, value, exact } => match op {
            Op::Like => row[*idx].as_text().is_some_and(|t| like(if *exact { value.clone() } else { format!("%{value}%") }.as_str(), &t)),
            _ => compare(&row[*idx], value).is_some_and(|o| match op {
                Op::Eq => o.is_eq(),
                Op::Ne => o.is_ne(),
                Op::Lt => o.is_lt(),
                _ => o.is_gt(),
            }),
        },
        Cond::Date { idx, op, at, not_manager } => {
            let (Sql::Int(t), Some(at)) = (&row[*idx], at) else { return false };
            let ok = match op {
                Op::Eq => t == at,
                Op::Ne => t != at,
                Op::Lt => t < at,
                _ => t > at,
            };
            ok && not_manager.is_none_or(|i| row[i] != Sql::Int(0))
        }
        Cond::Group { idx, op, value } => {
            let Sql::Text(groups) = &row[*idx] else { return false };
            let wrapped = format!(",{groups},");
            match op {
                Op::Eq => like(&format!("%,{value},%"), &wrapped),
                Op::Ne => !like(&format!("%,{value},%"), &wrapped),
                _ => like(&format!("%{value}%"), groups),
            }
        }
        Cond::Search { idxs, pattern, id, negate } => {
            let found = idxs.iter().any(|&i| row[i].as_text().is_some_and(|t| like(pattern, &t)))
                || id.as_ref().is_some_and(|(i, v)| row[*i].as_text().is_some_and(|t| like(v, &t)));
            found != *negate
        }
    }
}

/// SQLite's comparison of a column with a bound text parameter under `COLLATE NOCASE`: integer
/// columns compare numerically when the text looks like a number (and sort before text
/// otherwise); text columns compare case-insensitively.
fn compare(col: &Sql, value: &str) -> Option<Ordering> {
    match col {
        Sql::Null => None,
        Sql::Int(i) => match value.trim().parse::<f64>() {
            Ok(v) => (*i as f64).partial_cmp(&v),
            Err(_) => Some(Ordering::Less),
        },
        Sql::Text(s) => Some(s.to_ascii_lowercase().cmp(&value.to_ascii_lowercase())),
    }
}

/// SQLite's `LIKE`: `%` any run, `_` any one character, ASCII case-insensitive.
pub(super) fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => {
                let rest = &p[1..];
                (0..=t.len()).any(|k| go(rest, &t[k..]))
            }
            Some('_') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(&p[1..], &t[1..]),
        }
    }
    // Collapse runs of `%` so that the backtracking stays linear in practice.
    let mut p: Vec<char> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        if !(c == '%' && p.last() == Some(&'%')) {
            p.push(c);
        }
    }
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// One `ORDER BY` term.
enum Key {
    Column(usize),
    /// `CAST(column AS INTEGER)`, for the agents' `os.version` (major, then minor).
    Cast(usize),
}

impl Key {
    fn cmp(&self, a: &[Sql], b: &[Sql]) -> Ordering {
        match self {
            Key::Column(i) => sql_order(&a[*i], &b[*i]),
            Key::Cast(i) => sql_order(&cast_int(&a[*i]), &cast_int(&b[*i])),
        }
    }
}

fn cast_int(v: &Sql) -> Sql {
    match v {
        Sql::Text(s) => {
            let s = s.trim_start();
            let end =
                s.char_indices().find(|(k, c)| !(c.is_ascii_digit() || (*k == 0 && (*c == '-' || *c == '+')))).map_or(s.len(), |(k, _)| k);
            Sql::Int(s[..end].parse().unwrap_or(0))
        }
        other => other.clone(),
    }
}

/// SQLite's ordering: NULL, then numbers, then text (bytewise).
fn sql_order(a: &Sql, b: &Sql) -> Ordering {
    fn rank(v: &Sql) -> u8 {
        match v {
            Sql::Null => 0,
            Sql::Int(_) => 1,
            Sql::Text(_) => 2,
        }
    }
    match (a, b) {
        (Sql::Int(x), Sql::Int(y)) => x.cmp(y),
        (Sql::Text(x), Sql::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => rank(a).cmp(&rank(b)),
    }
}

type SortPlan = (Vec<Key>, bool);

fn sort_keys(table: &Table, allowed: &[&'static str], sort: Option<&Sort>) -> Result<Option<SortPlan>, WazuhError> {
    let Some(sort) = sort.filter(|s| !(s.fields.len() == 1 && s.fields[0].is_empty())) else {
        return Ok(table.default_sort.and_then(|f| table.index(f)).map(|i| (vec![Key::Column(i)], sort.is_some_and(|s| s.desc))));
    };
    let invalid: Vec<&str> = sort.fields.iter().map(String::as_str).filter(|f| !allowed.contains(f)).collect();
    if !invalid.is_empty() {
        let extra = format!("Allowed sort fields: {}. Fields: {}", sorted(allowed).join(", "), dedup(&invalid).join(", "));
        return Err(WazuhError::new(1403, Some(extra)));
    }
    let mut keys = Vec::new();
    for field in &sort.fields {
        if table.kind == Kind::Agents && field == "os.version" {
            keys.extend(["os.major", "os.minor"].iter().filter_map(|f| table.index(f)).map(Key::Cast));
        } else if let Some(i) = table.index(field) {
            keys.push(Key::Column(i));
        }
    }
    Ok(Some((keys, sort.desc)))
}

/// The key the agents' listing re-sorts a page with: parsed `Wazuh vX.Y.Z` versions, lower-cased
/// text, numbers; missing versions count as 0.0.0.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum VersionKey {
    Null,
    Num(i64),
    Version(Vec<u64>),
    Text(String),
}

fn version_key(field: &str, v: &Sql) -> VersionKey {
    match (field, v) {
        ("version", Sql::Null) => VersionKey::Version(vec![0, 0, 0]),
        ("version", Sql::Text(s)) => {
            let lower = s.to_ascii_lowercase();
            let digits = lower.trim_start_matches("wazuh ").trim_start_matches('v');
            let parts: Option<Vec<u64>> = digits.split('.').map(|p| p.parse().ok()).collect();
            match parts {
                Some(p) if p.len() == 3 => VersionKey::Version(p),
                _ if s.is_empty() => VersionKey::Version(vec![0, 0, 0]),
                _ => VersionKey::Text(lower),
            }
        }
        (_, Sql::Null) => VersionKey::Null,
        (_, Sql::Int(i)) => VersionKey::Num(*i),
        (_, Sql::Text(s)) => VersionKey::Text(s.to_ascii_lowercase()),
    }
}

/// An item: the selected non-NULL columns in the table's order, dotted ones nested.
fn render(table: &Table, fields: &[&str], row: &[Sql]) -> Map<String, Value> {
    let mut item = Map::new();
    for (i, field) in table.fields.iter().enumerate() {
        if !fields.contains(field) || row[i] == Sql::Null {
            continue;
        }
        // The agents' listing drops a disconnection time of 0 (never disconnected).
        if table.kind == Kind::Agents && *field == "disconnection_time" && row[i] == Sql::Int(0) {
            continue;
        }
        let value = (table.render)(field, &row[i]);
        match field.split_once('.') {
            Some((prefix, rest)) if table.nested.contains(&prefix) => {
                let entry = item.entry(prefix.to_string()).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(nested) = entry {
                    nested.insert(rest.to_string(), value);
                }
            }
            _ => {
                item.insert(field.to_string(), value);
            }
        }
    }
    item
}

/// A stored date as the API's JSON encoder writes an aware UTC datetime (`isoformat()`).
pub(super) fn iso_date(epoch: i64) -> String {
    DateTime::from_timestamp(epoch, 0).map_or_else(String::new, |d| d.format("%Y-%m-%dT%H:%M:%S+00:00").to_string())
}

/// The plain JSON value of a column.
pub(super) fn plain(v: &Sql) -> Value {
    match v {
        Sql::Null => Value::Null,
        Sql::Int(i) => Value::from(*i),
        Sql::Text(s) => Value::from(s.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_plain(_: &str, v: &Sql) -> Value {
        plain(v)
    }

    const T: Table = Table {
        kind: Kind::Agents,
        fields: &["id", "name", "status", "group", "lastKeepAlive", "os.name"],
        nested: &["os"],
        dates: &["lastKeepAlive"],
        min_select: &["id"],
        default_sort: Some("id"),
        render: render_plain,
    };

    fn rows() -> Vec<Vec<Sql>> {
        vec![
            vec![Sql::Int(0), Sql::text("mgr"), Sql::text("active"), Sql::Null, Sql::Int(253402300799), Sql::text("Ubuntu")],
            vec![Sql::Int(1), Sql::text("web"), Sql::text("active"), Sql::text("default,web"), Sql::Int(1000), Sql::text("Ubuntu")],
            vec![Sql::Int(2), Sql::text("db"), Sql::text("disconnected"), Sql::text("default"), Sql::Int(500), Sql::Null],
        ]
    }

    fn ids(q: Query) -> Vec<Value> {
        let page = run(&T, T.fields, &rows(), &Query { limit: 500, ..q }, 2000).unwrap();
        page.items.iter().map(|i| i["id"].clone()).collect()
    }

    #[test]
    fn q_precedence_and_operators() {
        assert_eq!(ids(Query { q: "status=active;name=web".into(), ..Default::default() }), vec![1]);
        assert_eq!(ids(Query { q: "name=db,name=web".into(), ..Default::default() }), vec![1, 2]);
        assert_eq!(ids(Query { q: "name~E".into(), ..Default::default() }), vec![1]);
        assert_eq!(ids(Query { q: "os.name=null".into(), ..Default::default() }), vec![2]);
        assert_eq!(ids(Query { q: "group=web".into(), ..Default::default() }), vec![1]);
        // An OR in q reaches past the legacy filters, as in the generated SQL.
        let q =
            Query { filters: vec![("status".into(), vec!["disconnected".into()])], q: "name=mgr,name=web".into(), ..Default::default() };
        assert_eq!(ids(q), vec![1]);
        // Older than 1200 s: the manager never is.
        assert_eq!(ids(Query { q: "lastKeepAlive>1200".into(), ..Default::default() }), vec![2]);
        assert_eq!(ids(Query { q: "(name=db,name=web);status=active".into(), ..Default::default() }), vec![1]);
    }

    #[test]
    fn q_errors() {
        let err = |q: &str| run(&T, T.fields, &rows(), &Query { q: q.into(), limit: 5, ..Default::default() }, 0).err().unwrap().code;
        assert_eq!(err("nope=1"), 1408);
        assert_eq!(err("name<=1"), 1409);
        assert_eq!(err("name"), 1407);
        assert_eq!(err("(name=a"), 1407);
        assert_eq!(err("lastKeepAlive<yesterday"), 1412);
        assert_eq!(err("group>a"), 1409);
    }

    #[test]
    fn search_sort_select() {
        assert_eq!(ids(Query { search: Some(Search::parse("-web")), ..Default::default() }), vec![0, 2]);
        assert_eq!(ids(Query { search: Some(Search::parse("002")), ..Default::default() }), vec![2]);
        assert_eq!(ids(Query { sort: Some(Sort::parse("-name")), ..Default::default() }), vec![1, 0, 2]);
        let page = run(&T, T.fields, &rows(), &Query { select: Some(vec!["os.name".into()]), limit: 1, ..Default::default() }, 0).unwrap();
        assert_eq!(Value::Object(page.items[0].clone()), serde_json::json!({"id": 0, "os": {"name": "Ubuntu"}}));
        assert_eq!(page.total, 3);
        let bad = run(&T, T.fields, &rows(), &Query { select: Some(vec!["x".into()]), limit: 1, ..Default::default() }, 0);
        assert_eq!(bad.err().unwrap().code, 1724);
    }

    #[test]
    fn like_matches_sqlite() {
        assert!(like("%ab_d%", "xxABcD"));
        assert!(!like("%abd%", "abcd"));
        assert!(like("1", "1"));
        assert_eq!(timeframe("7d"), Some(604800));
        assert_eq!(timeframe("10"), Some(10));
        assert_eq!(timeframe("x"), None);
    }
}
