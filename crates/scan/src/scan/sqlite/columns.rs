//! Which columns of a table are named for a credential, from its
//! `CREATE TABLE` text, so a value can be written after its column's name.
//!
//! A record stores only values: `password` of `users(id, name, password)`
//! is the third field, and the name lives in `sqlite_master`. Written one
//! per line, a bare password has nothing beside it that says what it is;
//! written as `password = "…"`, the contextual rules read it like any
//! assignment. Only credential-named columns are labelled (the values of the
//! others are scanned as before), and only when the record's field order is
//! the declared one: not in `WITHOUT ROWID` tables (primary key first) nor
//! with generated columns (not stored).

/// Words that make a column's name a credential's.
const CREDENTIAL_WORDS: &[&str] =
    &["password", "passwd", "pwd", "secret", "token", "apikey", "api_key", "private_key"];

/// Words that make a credential-named column hold a derived value, not the credential
/// (`password_hash`, `password_digest`, `encrypted_password`, `password_salt`): a hash
/// read as `password_hash = "5f4d…"` would look like an assigned secret.
const DERIVED_WORDS: &[&str] = &["hash", "digest", "salt", "crypt"];

/// Constraint clauses of a column list: not columns.
const CONSTRAINTS: &[&str] = &["constraint", "primary", "unique", "check", "foreign"];

/// For each stored field of the table, `Some(name)` when the column's name
/// is a credential's; empty when the field order cannot be trusted.
pub(super) fn credential_labels(sql: &str) -> Vec<Option<String>> {
    let lower = sql.to_ascii_lowercase();
    if lower.contains("without rowid") || lower.contains("generated always") {
        return Vec::new();
    }
    declared_labels(sql)
}

/// For each column a `CREATE TABLE` text (or a column list in parentheses, an
/// `INSERT`'s) declares, in order, `Some(name)` when its name is a credential's;
/// empty when none is. A dump's rows list the declared columns in order, whatever
/// the table's storage.
pub(crate) fn declared_labels(sql: &str) -> Vec<Option<String>> {
    let labels: Vec<Option<String>> = declared_names(sql)
        .into_iter()
        .map(|name| {
            let lower = name.to_ascii_lowercase();
            let credential = CREDENTIAL_WORDS.iter().any(|w| lower.contains(w));
            (credential && !DERIVED_WORDS.iter().any(|w| lower.contains(w))).then_some(name)
        })
        .collect();
    if labels.iter().all(Option::is_none) { Vec::new() } else { labels }
}

/// Names a key-value table gives the column of its keys (`settings(name, value)`,
/// WordPress's `option_name` and `meta_key`, Rails settings' `var`).
const KEY_COLUMNS: &[&str] = &[
    "name",
    "key",
    "option_name",
    "meta_key",
    "setting",
    "setting_name",
    "setting_key",
    "config_key",
    "config_name",
    "param",
    "param_name",
    "parameter",
    "variable",
    "var",
    "property",
    "property_name",
    "k",
];
/// Names a key-value table gives the column of its values.
const VALUE_COLUMNS: &[&str] = &[
    "value",
    "option_value",
    "meta_value",
    "setting_value",
    "config_value",
    "param_value",
    "property_value",
    "val",
    "v",
];

/// For a key-value table (`CREATE TABLE` text, or an `INSERT`'s column list): the
/// indexes of its key column and of its value column, when the key comes first.
/// A row's value is then the credential its key names, when the key names one
/// (`('smtp_password', 'S3cr3t…')`).
pub(crate) fn key_value_columns(sql: &str) -> Option<(usize, usize)> {
    let names: Vec<String> =
        declared_names(sql).into_iter().map(|name| name.to_ascii_lowercase()).collect();
    let key = names.iter().position(|n| KEY_COLUMNS.contains(&n.as_str()))?;
    let value = names.iter().position(|n| VALUE_COLUMNS.contains(&n.as_str()))?;
    (key < value).then_some((key, value))
}

/// The names of the columns a `CREATE TABLE` text (or a column list in
/// parentheses) declares, in order; none when there are no parentheses.
fn declared_names(sql: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (sql.find('('), sql.rfind(')')) else { return Vec::new() };
    if close <= open {
        return Vec::new();
    }
    top_level_parts(&sql[open + 1..close])
        .into_iter()
        .filter_map(|part| column_name(part.trim()))
        .collect()
}

/// The column definitions: the text between top-level commas.
fn top_level_parts(list: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None, 0);
    for (i, c) in list.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '[') => quote = Some(']'),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&list[start..]);
    parts
}

/// The column a definition declares, unquoted; None for a table constraint.
fn column_name(def: &str) -> Option<String> {
    let name = match def.chars().next()? {
        q @ ('"' | '`' | '[') => {
            let close = if q == '[' { ']' } else { q };
            let end = def[1..].find(close)?;
            &def[1..1 + end]
        }
        _ => def.split(|c: char| c.is_ascii_whitespace()).next()?,
    };
    let keyword = CONSTRAINTS.iter().any(|k| name.eq_ignore_ascii_case(k));
    (!name.is_empty() && !keyword).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_tables_name_their_key_and_value_columns() {
        let wp = "CREATE TABLE `wp_options` (`option_id` bigint, `option_name` varchar(191), \
                  `option_value` longtext, `autoload` varchar(20), PRIMARY KEY (`option_id`))";
        assert_eq!(key_value_columns(wp), Some((1, 2)));
        assert_eq!(key_value_columns("(name, value)"), Some((0, 1)));
        assert_eq!(key_value_columns("(value, name)"), None);
        assert_eq!(key_value_columns("(id, name, email)"), None);
    }

    #[test]
    fn credential_columns_are_labelled_in_field_order() {
        let sql = "CREATE TABLE users(id INTEGER PRIMARY KEY, \"user name\" TEXT, \
                   password TEXT NOT NULL DEFAULT '', api_token varchar(64), \
                   password_hash TEXT, CONSTRAINT u UNIQUE (id, password))";
        let got = credential_labels(sql);
        let want = [None, None, Some("password".to_owned()), Some("api_token".to_owned()), None];
        assert_eq!(got, want);
    }

    #[test]
    fn tables_without_a_credential_or_a_trusted_order_get_none() {
        for sql in [
            "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT)",
            "CREATE TABLE t(k TEXT PRIMARY KEY, token TEXT) WITHOUT ROWID",
            "CREATE TABLE t(a TEXT, token TEXT, b TEXT GENERATED ALWAYS AS (a) VIRTUAL)",
            "not sql",
        ] {
            assert!(credential_labels(sql).is_empty(), "{sql}");
        }
    }
}
