//! The README's embedding section is the examples' own code: every line of
//! its snippet (comments aside) is a line of `examples/window.rs` or
//! `examples/terrain.rs`, so the two cannot drift apart.

#[test]
fn the_readme_embedding_snippet_is_the_examples_code() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## Embedding the runtime")
        .nth(1)
        .expect("the README has an embedding section");
    let snippet = section
        .split("```rust")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the section has a Rust snippet");
    let examples: Vec<String> = ["window.rs", "terrain.rs"]
        .iter()
        .map(|e| std::fs::read_to_string(root.join("examples").join(e)).unwrap())
        .collect();
    let lines = |text: &str| -> Vec<String> { text.lines().map(|l| l.trim().to_owned()).collect() };
    let known: Vec<String> = examples.iter().flat_map(|e| lines(e)).collect();
    let mut checked = 0;
    for line in lines(snippet) {
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        assert!(
            known.contains(&line),
            "README line not in the examples: {line:?}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "{checked} lines");
}
