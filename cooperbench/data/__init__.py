"""The benchmark's inputs: the dataset folder and the upstream repositories.

`dataset` reads tasks, features and pairs (every task file through one guarded reader);
`repocache` mirrors each upstream once and hands out clean base-only working copies.
"""
