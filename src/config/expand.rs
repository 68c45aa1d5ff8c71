//! `${ENV_VAR}` and `${file:/path}` references inside string values of the config.
//!
//! Expansion runs on parsed YAML values, not on the raw text, so a secret containing `:` or `#`
//! cannot change the structure of the file. `$${` writes a literal `${`.

use std::path::Path;

/// Expands every reference in `input`. The error names the missing variable or unreadable file.
pub fn expand(input: &str, base_dir: &Path) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(inner) = after.strip_prefix("${") {
            let end = inner.find('}').ok_or_else(|| format!("unterminated `${{` in `{input}`"))?;
            out.push_str(&resolve(&inner[..end], base_dir)?);
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn resolve(reference: &str, base_dir: &Path) -> Result<String, String> {
    if let Some(path) = reference.strip_prefix("file:") {
        let path = base_dir.join(path);
        let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read secret file `{}`: {e}", path.display()))?;
        // Secret files usually end with a newline that is not part of the secret.
        return Ok(text.trim_end_matches(['\n', '\r']).to_string());
    }
    if reference.is_empty() || !reference.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`${{{reference}}}` is not a valid variable name"));
    }
    std::env::var(reference).map_err(|_| format!("environment variable `{reference}` is not set"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables_files_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "s3cr3t\n").unwrap();
        // SAFETY: tests in this module do not read this variable concurrently.
        unsafe { std::env::set_var("SLUICE_TEST_EXPAND", "v") };
        assert_eq!(expand("a${SLUICE_TEST_EXPAND}b${file:secret}c$${X}$d", dir.path()).unwrap(), "avbs3cr3tc${X}$d");
    }

    #[test]
    fn missing_variable_is_named() {
        let err = expand("${SLUICE_SURELY_UNSET_VAR}", Path::new(".")).unwrap_err();
        assert!(err.contains("SLUICE_SURELY_UNSET_VAR"), "{err}");
    }
}
