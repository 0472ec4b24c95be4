use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const NOTIFY_SECRET: &str = "whsec_dGhpcy1pcy1hLXRlc3Qtc2VjcmV0LTI0Yg==";

#[test]
fn file_then_environment() {
    let text = r#"
        output = "file:///tmp/out"
        workers = 2
        [opentok]
        secret = "in-file-secret-of-opentok"
        [liveswitch.secrets]
        "app-1" = "s1-secret-of-app-one"
        [[notify]]
        url = "http://127.0.0.1:9/hook"
        secret = "whsec_dGhpcy1pcy1hLXRlc3Qtc2VjcmV0LTI0Yg=="
    "#;
    let c = Config::parse(
        text,
        env(&[
            ("MOSAIC_OPENTOK_SECRET", "from-env-secret-of-opentok"),
            ("MOSAIC_DATA_DIR", "/var/lib/mosaic"),
            ("MOSAIC_ALLOW_PRIVATE_URLS", "true"),
            ("MOSAIC_PRODUCE", "compose,repair"),
            ("MOSAIC_LIVESWITCH_SECRETS_app-2", "s2-secret-of-app-two"),
            ("MOSAIC_NOTIFY_0_URL", "http://127.0.0.1:10/hook"),
            ("MOSAIC_COMPOSE_SIZE", "640x480"),
            ("HOME", "/root"),
        ]),
    )
    .unwrap();
    assert_eq!(c.workers, 2);
    assert_eq!(
        c.opentok.secret.as_deref(),
        Some("from-env-secret-of-opentok")
    );
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/mosaic"));
    assert!(c.allow_private_urls);
    assert_eq!(c.produce, vec![Product::Compose, Product::Repair]);
    assert_eq!(c.liveswitch.secrets["app-1"], "s1-secret-of-app-one");
    assert_eq!(c.liveswitch.secrets["app-2"], "s2-secret-of-app-two");
    assert_eq!(c.notify[0].secret, NOTIFY_SECRET);
    assert_eq!(c.notify[0].url, "http://127.0.0.1:10/hook");
    assert_eq!(c.compose.size, "640x480");
    assert_eq!(c.lease_secs, 60);
}

/// The documented example with every placeholder secret replaced, as an operator must.
/// A secret of this operator's own for each key the example configuration needs.
const GOOD_SECRETS: &[(&str, &str)] = &[
    ("MOSAIC_API_TOKEN", "a-token-of-this-operator"),
    ("MOSAIC_OPENTOK_SECRET", "a-secret-of-this-operator"),
    (
        "MOSAIC_LIVESWITCH_SECRETS_my-app-id",
        "a-secret-of-this-app",
    ),
    ("MOSAIC_ENABLEX_TOKEN", "an-enablex-token-of-ours"),
    ("MOSAIC_NOTIFY_0_SECRET", NOTIFY_SECRET),
];

fn example_with_secrets() -> Config {
    Config::parse(include_str!("../../../docs/mosaic.toml"), env(GOOD_SECRETS)).unwrap()
}

#[test]
fn the_documented_example_is_every_default() {
    let example = example_with_secrets();
    let defaults = Config::default();
    assert_eq!(example.listen, defaults.listen);
    assert_eq!(example.fetch.max_bytes, defaults.fetch.max_bytes);
    assert_eq!(example.compose, defaults.compose);
    assert_eq!(example.lease_secs, defaults.lease_secs);
    assert_eq!(example.notify_retry.cap_ms, defaults.notify_retry.cap_ms);
    assert_eq!(example.body_limit, defaults.body_limit);
    assert_eq!(example.retry_cap_ms, defaults.retry_cap_ms);
    assert_eq!(example.retention_days, defaults.retention_days);
    assert_eq!(example.http.max_connections, defaults.http.max_connections);
    assert_eq!(
        example.http.header_timeout_secs,
        defaults.http.header_timeout_secs
    );
    assert_eq!(
        example.http.body_timeout_secs,
        defaults.http.body_timeout_secs
    );
    assert_eq!(
        example.fetch.max_total_bytes,
        defaults.fetch.max_total_bytes
    );
}

#[test]
fn placeholder_short_and_empty_secrets_are_refused_by_key() {
    let example = include_str!("../../../docs/mosaic.toml");
    let err = |e: &[(&str, &str)]| Config::parse(example, env(e)).unwrap_err().to_string();
    // The example as it is: its first placeholder is named.
    assert!(
        err(&[]).contains("api_token: is the documented example"),
        "{}",
        err(&[])
    );
    let good: Vec<(&str, &str)> = GOOD_SECRETS.to_vec();
    for (i, (name, _)) in good.iter().enumerate() {
        let key = match *name {
            "MOSAIC_API_TOKEN" => "api_token".to_owned(),
            "MOSAIC_OPENTOK_SECRET" => "opentok.secret".to_owned(),
            "MOSAIC_LIVESWITCH_SECRETS_my-app-id" => "liveswitch.secrets.\"my-app-id\"".to_owned(),
            "MOSAIC_ENABLEX_TOKEN" => "enablex.token".to_owned(),
            _ => "notify[0].secret".to_owned(),
        };
        for (bad, why) in [
            ("", "is empty"),
            ("short-secret", "bytes long"),
            ("whsec_c2hvcnQ=", "bytes long"),
        ] {
            if *name == "MOSAIC_NOTIFY_0_SECRET" && !bad.starts_with("whsec_") {
                continue; // not even a whsec_ secret: refused as such
            }
            let mut e = good.clone();
            e[i].1 = bad;
            let msg = err(&e);
            assert!(
                msg.contains(&format!("{key}: ")) && msg.contains(why),
                "{name}={bad:?}: {msg}"
            );
        }
    }
    // The example's notify secret is a placeholder too.
    let mut e = good.clone();
    e[4].1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert!(err(&e).contains("notify[0].secret: is the documented example"));
}

#[test]
fn the_readme_shows_the_documented_example() {
    let readme = include_str!("../../../README.md");
    assert!(readme.contains(include_str!("../../../docs/mosaic.toml")));
}

#[test]
fn mistakes_are_named() {
    let err = |text: &str, e: &[(&str, &str)]| Config::parse(text, env(e)).unwrap_err().to_string();
    assert!(err("", &[]).contains("output: is required"));
    assert!(err("output = \"file:///x\"\nworkrs = 2", &[]).contains("workrs"));
    assert!(
        err("output = \"file:///x\"", &[("MOSAIC_WORKERS", "many")]).contains("MOSAIC_WORKERS")
    );
    assert!(
        err("output = \"file:///x\"", &[("MOSAIC_NOPE", "1")]).contains("no configuration key")
    );
    assert!(err("output = \"file:///x\"\nqueue = \"mysql://x\"", &[]).contains("queue"));
    assert!(
        err("output = \"file:///x\"\n[compose]\nlayout = \"grid\"", &[]).contains("compose.layout")
    );
    assert!(
        err("output = \"file:///x\"\n[compose]\ntrim = \"loud\"", &[]).contains("compose.trim")
    );
    assert!(
        err(
            "output = \"file:///x\"\n[compose]\ntrim = \"quiet\"\ntrim_min = 0.1",
            &[]
        )
        .contains("--trim-min")
    );
    assert!(
        err(
            "output = \"file:///x\"\n[[notify]]\nurl = \"http://h/\"\nsecret = \"***\"",
            &[]
        )
        .contains("notify[0].secret")
    );
}
