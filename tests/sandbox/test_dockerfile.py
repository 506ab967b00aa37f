"""Task Dockerfiles rewritten for a machine with a registry mirror and the upstream in the repository cache."""

from __future__ import annotations

import io
import tarfile

from cooperbench.sandbox import images
from cooperbench.sandbox.dockerfile import BuildSupply, mirrored, rewrite

CLICK_LIKE = """FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y git
WORKDIR /workspace
RUN git clone https://github.com/pallets/click.git repo && \\
    cd repo && \\
    git checkout d791537317947448a3960662d00acf160eff2602
FROM build
RUN git clone https://github.com/someone/else.git other
COPY runner.sh /usr/local/bin/
"""
SUPPLY = BuildSupply("mirror.example:5000/hub", b"PEM", "https://github.com/pallets/click", "click")


def test_docker_hub_images_go_through_the_mirror_and_others_stay_as_written():
    m = "mirror.example:5000/hub"
    assert mirrored("python:3.11-slim", m) == f"{m}/library/python:3.11-slim"
    assert mirrored("docker.io/library/python:3.11", m) == f"{m}/library/python:3.11"
    assert mirrored("someone/image@sha256:abc", m) == f"{m}/someone/image@sha256:abc"
    for kept in ("ghcr.io/org/img:1", "localhost/base:bookworm", "registry:5000/img", "${BASE_IMAGE}", "scratch"):
        assert mirrored(kept, m) == kept
    assert mirrored("python:3.11-slim", None) == "python:3.11-slim"


def test_the_upstream_clone_is_served_from_the_cache_and_the_ca_reaches_build_steps_only():
    text, served = rewrite(CLICK_LIKE, SUPPLY)
    lines = text.splitlines()
    assert lines[0] == "FROM mirror.example:5000/hub/library/python:3.11-slim AS build"
    assert "FROM build" in lines  # a build stage is not an image to pull
    assert served == ["https://github.com/pallets/click.git"]  # not someone else's repository
    copy = lines.index("COPY cooperbench-build/upstream/ /opt/cooperbench-build/upstream/")
    assert lines[copy + 1] == "ARG GIT_CONFIG_SYSTEM=/opt/cooperbench-build/upstream/gitconfig"
    assert lines[copy + 2].startswith("RUN git clone https://github.com/pallets/click.git")
    # build arguments, never ENV: nothing of the build's trust or git settings reaches the image's config
    assert "ENV" not in text and text.count("ARG PIP_CERT=/opt/cooperbench-build/ca.pem") == 2
    assert rewrite(CLICK_LIKE, BuildSupply()) == (CLICK_LIKE, [])  # nothing supplied: unchanged


def test_a_clone_url_on_a_continued_line_is_found_and_a_url_after_the_clone_command_is_not():
    continued = "FROM python:3\nRUN git clone --depth 1 \\\n    https://github.com/pallets/click repo\n"
    assert rewrite(continued, SUPPLY)[1] == ["https://github.com/pallets/click"]
    other = "FROM python:3\nRUN git clone /src repo && echo https://github.com/pallets/click\n"
    assert rewrite(other, SUPPLY)[1] == []


def test_the_build_context_carries_the_rewritten_dockerfile_the_bundle_and_a_bare_upstream(tmp_path):
    task = tmp_path / "task1"
    (task / "feature1").mkdir(parents=True)
    (task / "Dockerfile").write_text(CLICK_LIKE)
    (task / "runner.sh").write_text("#!/bin/bash\n")
    (task / "feature1" / "feature.patch").write_text("gold\n")
    upstream = tmp_path / "up.git"
    (upstream / "objects").mkdir(parents=True)
    (upstream / "HEAD").write_text("ref: refs/heads/main\n")
    with tarfile.open(fileobj=io.BytesIO(images.build_context(task, SUPPLY, upstream))) as tar:
        names = set(tar.getnames())
        dockerfile = tar.extractfile("Dockerfile").read().decode()
        gitconfig = tar.extractfile("cooperbench-build/upstream/gitconfig").read().decode()
    assert "cooperbench-build/upstream/click.git/HEAD" in names and "cooperbench-build/ca.pem" in names
    assert not any(n.startswith("feature1") for n in names)  # gold patches never enter an image
    assert "mirror.example:5000/hub/library/python" in dockerfile
    assert "insteadOf = https://github.com/pallets/click.git" in gitconfig
    assert images.build_hash(task, None, SUPPLY) != images.build_hash(task, None, BuildSupply())
