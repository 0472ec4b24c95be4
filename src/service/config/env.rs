//! The environment's layer of the configuration (pure): `MOSAIC_<KEY>` variables laid onto the
//! TOML tree, matched against the keys it has (`OPENTOK_SECRET`, `NOTIFY_0_URL`,
//! `LIVESWITCH_SECRETS_<application id>`), each value typed like the key's.

use toml::{Table, Value};

/// Lays `over`'s keys onto `base`, table by table.
pub(super) fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Table(b), Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_table() && v.is_table() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Sets the value an environment variable names (`OPENTOK_SECRET`, `NOTIFY_0_URL`,
/// `LIVESWITCH_SECRETS_<application id>`), matched against the keys the configuration has
/// (case-insensitively; keys may hold `_` themselves).
pub(super) fn apply_env(root: &mut Value, key: &str, value: &str) -> Result<(), String> {
    match root {
        Value::Table(table) => {
            // The longest key that the name starts with wins (`data_dir` before `data`).
            let mut names: Vec<String> = table.keys().cloned().collect();
            names.sort_by_key(|k| std::cmp::Reverse(k.len()));
            for name in names {
                let upper = name.to_ascii_uppercase();
                if key.eq_ignore_ascii_case(&upper) {
                    let slot = table.get_mut(&name).ok_or("vanished key")?;
                    *slot = typed_like(slot, value)?;
                    return Ok(());
                }
                if let Some(rest) = strip_prefix_ci(key, &format!("{upper}_")) {
                    let slot = table.get_mut(&name).ok_or("vanished key")?;
                    if name == "secrets" {
                        // A map keyed by application id: the rest is the id, as written.
                        if let Value::Table(map) = slot {
                            map.insert(rest.to_owned(), Value::String(value.to_owned()));
                            return Ok(());
                        }
                    }
                    return apply_env(slot, rest, value);
                }
            }
            Err(format!("no configuration key matches {key:?}"))
        }
        Value::Array(items) => {
            let (index, rest) = key.split_once('_').ok_or("needs an index and a key")?;
            let index: usize = index
                .parse()
                .map_err(|_| format!("{index:?} is not an index"))?;
            while items.len() <= index {
                items.push(Value::Table(Table::new()));
            }
            match &mut items[index] {
                Value::Table(t) => {
                    t.insert(rest.to_ascii_lowercase(), Value::String(value.to_owned()));
                    Ok(())
                }
                _ => Err("not a list of tables".into()),
            }
        }
        _ => Err(format!("{key:?} is not a table")),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() > prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

/// The environment's text as the kind of value the key holds.
fn typed_like(existing: &Value, text: &str) -> Result<Value, String> {
    Ok(match existing {
        Value::Boolean(_) => Value::Boolean(match text {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(format!("{text:?} is not true or false")),
        }),
        Value::Integer(_) => Value::Integer(
            text.trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a whole number"))?,
        ),
        Value::Float(_) => Value::Float(
            text.trim()
                .parse()
                .map_err(|_| format!("{text:?} is not a number"))?,
        ),
        Value::Array(_) => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        _ => Value::String(text.to_owned()),
    })
}
