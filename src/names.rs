//! Names of tenants, sources and sinks become parts of file paths and metric labels, so they are
//! restricted to a safe alphabet: nothing may climb out of an output directory.

/// Checks a tenant, source or sink name. Returns the reason it is not acceptable.
pub fn validate(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > 64 {
        return Err(format!("`{name}` is longer than 64 characters"));
    }
    let mut chars = name.chars();
    let first = chars.next().unwrap_or_default();
    if !first.is_ascii_alphanumeric() {
        return Err(format!("`{name}` must start with a letter or digit"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))) {
        return Err(format!("`{name}` contains `{bad}`; only letters, digits, `_`, `-` and `.` are allowed"));
    }
    if name.contains("..") {
        return Err(format!("`{name}` must not contain `..`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["acme", "tenant-01", "eve.json", "A_b-c.9"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_names_that_could_escape_a_directory() {
        for bad in ["../etc", "..", ".hidden", "a/b", "a\\b", "a..b", "", "x y", "ténant"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
