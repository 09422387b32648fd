//! The values settings are read from: durations, sizes, counts, URLs and origins, each checked
//! with a message that says what is expected.

/// An `smtp://` or `smtps://` URL with a host.
pub(super) fn check_smtp_url(raw: &str) -> Result<(), String> {
    match url::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "smtp" | "smtps") && url.host_str().is_some() => Ok(()),
        _ => Err(
            "must be smtp://host:port or smtps://user:password@host:465 (credentials URL-encoded)"
                .into(),
        ),
    }
}

/// An http(s) URL with `{token}` in it.
pub(super) fn check_confirmation_url(raw: &str) -> Result<(), String> {
    let parses = url::Url::parse(&raw.replace("{token}", "token"))
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some());
    if parses && raw.contains("{token}") {
        Ok(())
    } else {
        Err(format!(
            "`{raw}` must be an http(s) URL with {{token}} where the token goes, e.g. https://desk.example/confirm?token={{token}}"
        ))
    }
}

/// `scheme://host[:port]` with http or https and nothing after it.
pub(super) fn is_origin(origin: &str) -> bool {
    url::Url::parse(origin).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.username().is_empty()
            && url.as_str().trim_end_matches('/') == origin
    })
}

pub(super) fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("`{raw}` is not true or false")),
    }
}

pub(super) fn parse_count(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    match raw.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{raw}` is not a whole number between {min} and {max}"
        )),
    }
}

/// Accepts a size in bytes (`1048576`) or with a unit (`25MB`, `512KiB`).
pub(super) fn parse_size(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    let bytes = raw
        .trim()
        .parse::<bytesize::ByteSize>()
        .map_err(|_| format!("`{raw}` is not a size such as 25MB, 512KiB or 1048576"))?
        .as_u64();
    if (min..=max).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!("`{raw}` must lie between {min} and {max} bytes"))
    }
}

/// Accepts whole seconds (`30`) or a duration (`500ms`, `2s`, `1m`); returns milliseconds.
pub(super) fn parse_duration_ms(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    let ms = match raw.parse::<u64>() {
        Ok(secs) => secs.saturating_mul(1000),
        Err(_) => humantime::parse_duration(raw)
            .map_err(|_| format!("`{raw}` is not a duration such as 30, 500ms, 2s or 1m"))?
            .as_millis() as u64,
    };
    if (min..=max).contains(&ms) {
        Ok(ms)
    } else {
        Err(format!("`{raw}` must lie between {min} ms and {max} ms"))
    }
}

/// Accepts `3600`, `90m`, `72h`, `3d` or `1h 30m`; returns seconds.
pub(super) fn parse_duration_secs(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    let secs = match raw.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => humantime::parse_duration(raw)
            .map_err(|_| format!("`{raw}` is not a duration such as 3600, 90m, 72h or 3d"))?
            .as_secs(),
    };
    if (min..=max).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("`{raw}` must lie between {min} s and {max} s"))
    }
}

/// The database name in a PostgreSQL URL.
pub fn database_name(database_url: &str) -> Result<String, String> {
    let url = url::Url::parse(database_url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err("must start with postgres://".into());
    }
    let name = url.path().trim_start_matches('/');
    if name.is_empty() || name.contains('/') {
        return Err("must name a database, e.g. postgres://user@host:5432/incident_desk".into());
    }
    Ok(name.to_owned())
}
