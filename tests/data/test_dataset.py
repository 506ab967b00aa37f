"""Reading the CooperBench task format: upstream and base from Dockerfile or setup.sh, features, pairs, filters."""

import json

import pytest

from cooperbench.data.dataset import Dataset, Pair
from cooperbench.errors import UserError

SHA = "b8034a343831e8609aec2ec81eb7eeda57aa5d81"


def _task(root, repo, tid, n_features, dockerfile=None, setup=None):
    d = root / repo / f"task{tid}"
    d.mkdir(parents=True)
    if dockerfile is not None:
        (d / "Dockerfile").write_text(dockerfile)
    if setup is not None:
        (d / "setup.sh").write_text(setup)
    for n in range(1, n_features + 1):
        f = d / f"feature{n}"
        f.mkdir()
        (f / "feature.md").write_text(f"# feature {n}\n")
        (f / "feature.patch").write_text("diff --git a/x b/x\n")
        (f / "tests.patch").write_text("diff --git a/tests/t b/tests/t\n")
    return d


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "ds"
    _task(
        root,
        "pallets_click_task",
        2068,
        4,
        dockerfile=(
            "FROM python:3.11-slim\nWORKDIR /workspace\n"
            "RUN git clone https://github.com/pallets/click.git repo && \\\n"
            f"    cd repo && git checkout {SHA}\nCOPY runner.sh /usr/local/bin/\n"
        ),
    )
    t0 = _task(
        root,
        "openai_tiktoken_task",
        0,
        3,
        dockerfile=(
            "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\nCOPY upstream.bundle /tmp/upstream.bundle\n"
            f"RUN git clone /tmp/upstream.bundle /workspace/repo && cd /workspace/repo && git checkout {SHA[:12]}\n"
        ),
    )
    (t0 / "upstream.bundle").write_bytes(b"bundle")
    for extra in ("combined.patch", "test_features.sh", "test_all.sh", "meta_tests.patch"):
        (t0 / extra).write_text("ignored\n")
    (t0 / "test_report").mkdir()
    (t0 / "feature1" / "feature.filtered.patch").write_text("ignored\n")
    (t0 / "feature1" / "resolution_patches").mkdir()
    _task(
        root,
        "typst_task",
        6554,
        2,
        setup=(
            '#!/bin/bash\nREPO_NAME="typst"\nREPO_OWNER="typst"\nBASE_COMMIT="' + SHA + '"  # base\n'
            'git clone https://github.com/${REPO_OWNER}/${REPO_NAME} "$REPO_NAME"\ncd "$REPO_NAME"\n'
            'git checkout "$BASE_COMMIT"\n'
        ),
    )
    (root / "subsets").mkdir()
    (root / "subsets" / "lite.json").write_text(
        json.dumps(
            {
                "name": "lite",
                "tasks": [
                    {"repo": "pallets_click_task", "task_id": 2068, "pairs": [[2, 1], [3, 4]]},
                    {"repo": "typst_task", "task_id": 6554},
                ],
            }
        )
    )
    (root / "README.md").write_text("not a task\n")
    return root


def test_tasks_features_and_upstreams(root):
    ds = Dataset(root)
    assert [(t.repo, t.task_id, sorted(t.features)) for t in ds.tasks] == [
        ("openai_tiktoken_task", 0, [1, 2, 3]),
        ("pallets_click_task", 2068, [1, 2, 3, 4]),
        ("typst_task", 6554, [1, 2]),
    ]
    click = ds.task("pallets_click_task", 2068)
    assert click.upstream == ("https://github.com/pallets/click.git", SHA)
    assert click.image_name == "cooperbench-pallets-click:task2068"
    tiktoken = ds.task("openai_tiktoken_task", 0)
    assert tiktoken.upstream == (str((tiktoken.path / "upstream.bundle").resolve()), SHA[:12])
    assert ds.task("typst_task", 6554).upstream == ("https://github.com/typst/typst", SHA)


def test_all_unordered_pairs(root):
    pairs = Dataset(root).pairs()
    assert len(pairs) == 3 + 6 + 1
    assert Pair("pallets_click_task", 2068, (1, 2)) in pairs and Pair("pallets_click_task", 2068, (2, 1)) not in pairs


def test_filters(root):
    ds = Dataset(root)
    assert [p.features for p in ds.pairs(repo="openai_tiktoken_task", task_id=0)] == [(1, 2), (1, 3), (2, 3)]
    assert [p.key for p in ds.pairs(task_id=0)] == [
        "openai_tiktoken_task/task0/f1-f2",
        "openai_tiktoken_task/task0/f1-f3",
        "openai_tiktoken_task/task0/f2-f3",
    ]
    assert [p.features for p in ds.pairs(repo="pallets_click_task", features=(1, 2))] == [(1, 2)]
    assert [p.features for p in ds.pairs(repo="pallets_click_task", features=(4,))] == [(1, 4), (2, 4), (3, 4)]
    assert [(p.repo, p.features) for p in ds.pairs(subset="lite")] == [
        ("pallets_click_task", (1, 2)),
        ("pallets_click_task", (3, 4)),
        ("typst_task", (1, 2)),
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"repo": "nope_task"}, "unknown repo 'nope_task'"),
        ({"task_id": 99}, "unknown task 99"),
        ({"repo": "typst_task", "features": (7,)}, "no pair with feature"),
        ({"subset": "heavy"}, "unknown subset 'heavy'"),
    ],
)
def test_bad_filters_are_user_errors(root, kwargs, message):
    with pytest.raises(UserError, match=message):
        Dataset(root).pairs(**kwargs)


def test_missing_pieces_are_user_errors(root, tmp_path):
    with pytest.raises(UserError, match="dataset folder not found"):
        Dataset(tmp_path / "absent")
    task = Dataset(root).task("typst_task", 6554)
    (task.path / "feature2" / "tests.patch").unlink()
    with pytest.raises(UserError, match="missing tests.patch"):
        task.feature(2).tests_patch
    (task.path / "setup.sh").unlink()
    with pytest.raises(UserError, match="cannot find the upstream"):
        Dataset(root).task("typst_task", 6554).upstream
    (root / "subsets" / "broken.json").write_text("{not json")
    with pytest.raises(UserError, match="malformed subset"):
        Dataset(root).pairs(subset="broken")
