"""The deep-learning clustering pipeline: train (or load) an autoencoder, embed
every image once, cluster the embeddings per batch, merge the batches through
representative embeddings, and write the same folders, manifest and report
as the classic path (it reuses :class:`icas.cluster.Clusteror`'s output stage).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import numbers
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from icas.cluster import batches as _batches
from icas.cluster import output
from icas.cluster.layout import Placement
from icas.cluster.pipeline import OPTIONS, Clusteror, ClusterResult
from icas.cluster.transfer import TRANSFERS
from icas.dl._deps import require_torch
from icas.dl.clusterer import (
    NEIGHBORS,
    REDUCTIONS,
    EmbeddingClusterer,
    check_algorithm,
    relabel,
)
from icas.dl.dataset import ImageFolderDataset
from icas.dl.embed import embed_files, model_fingerprint
from icas.dl.losses import LOSSES
from icas.dl.models import check_embedder, default_model
from icas.dl.trainer import Trainer, load_checkpoint, resolve_device, save_checkpoint

torch = require_torch()

log = logging.getLogger("icas")

#: Where a run keeps its model and embedding cache, inside the output folder.
#: ``--overwrite`` leaves it in place, so a re-run with other clustering
#: parameters reuses both.
DL_DIR = "dl"
MODEL_FILE = "model.pt"
DEFAULT_IMAGE_SIZE = 64
DEFAULT_EPOCHS = 15


@dataclass
class DLClusterResult(ClusterResult):
    """A :class:`~icas.cluster.ClusterResult` plus what the deep-learning path chose.

    ``selection`` holds one entry per batch (and one for the merge) with the
    chosen parameters and every candidate's metrics; ``model_path`` is the
    checkpoint used or written; ``trained`` says whether this run trained it.
    """

    algorithm: str = ""
    selection: list = field(default_factory=list)
    model_path: str = ""
    trained: bool = False
    embeddings_from_cache: bool = False


@dataclass
class _Batch:
    index: int
    rows: np.ndarray  # rows of the embedding matrix, in batch order
    labels: np.ndarray  # (len(rows),) cluster within the batch, -1 outlier


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def representatives(unit: np.ndarray, labels: np.ndarray) -> dict[int, int]:
    """For each cluster, the position of its member nearest the cluster's mean
    (of unit-length embeddings): its most typical image, first on ties."""
    out = {}
    for lab in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == lab)
        centre = unit[members].mean(axis=0)
        out[int(lab)] = int(members[np.argmin(((unit[members] - centre) ** 2).sum(axis=1))])
    return out


@contextmanager
def _torch_threads(n: int | None):
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n if n > 0 else os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DLClusteror(Clusteror):
    """Sort a folder of images into folders of similar images with a neural network.

    The output is the classic path's (``results/cluster_<k>/``,
    ``results/outliers/``, ``clusters.csv``, ``report.html``,
    ``summary.json``; ``batch_<i>/`` with ``option="dontmerge"``), with the
    same safety: no overwrite without ``overwrite``, a journal for moves,
    ``resume``. The model and the embedding cache live in ``<out>/dl/``.

    Parameters
    ----------
    images_folder_path : path
        The folder of images (with ``option="merge"``: a folder of
        ``batch_<i>/`` folders written by ``option="dontmerge"``).
    algorithm : {"kmeans", "hierarchy", "DBSCAN", "gaussian", "HDBSCAN"}, default "kmeans"
    batch_size : int, default 1000
        Images clustered together; batches are then merged.
    model : torch.nn.Module, optional
        Any module with ``embed(x)`` taking ``(n, channels, s, s)`` images in
        [0, 1] (RGB). Default: :func:`icas.dl.models.default_model` for
        ``image_size``. With ``epochs=0`` it is used as it is (e.g. a
        pretrained feature extractor); otherwise it is trained in place.
    checkpoint : path, optional
        Load the model from this file (see :func:`icas.dl.trainer.load_checkpoint`)
        and do not train. Without it the model is trained and saved to
        ``<out>/dl/model.pt``; a later run on the same files with the same
        training settings loads that file instead of training again.
    image_size : int, optional
        Square input side, a power of two. Default: the checkpoint's, else 64.
    channels : {3, 1}, optional
        RGB or grayscale input. Default: the checkpoint's, else 3.
    epochs : int, default 15
    lr : float, default 1e-3
    train_batch_size : int, default 64
    loss : {"mse", "mae", "perceptual"}, default "mse"
    device : {"auto", "cpu", "cuda"}, default "auto"
    vgg_weights, feature_net
        For ``loss="perceptual"`` (see :class:`icas.dl.losses.PerceptualLoss`).
    n_clusters, max_iter, eps, min_samples, min_cluster_size, max_cluster_size
        The grid of the algorithm (see :class:`icas.dl.clusterer.EmbeddingClusterer`).
    reduce : {"spectral", "l2", "none"}, default "spectral"
        Preparation of the embeddings in each batch. The merge always works
        on unit-length embeddings (``"l2"``, or ``"none"`` if chosen), since
        spectral coordinates of different batches are not comparable.
    neighbors : {"auto", "exact", "ann"}, default "auto"
        Nearest-neighbour search of the clustering (see
        :class:`icas.dl.clusterer.EmbeddingClusterer`); ``"ann"`` needs the
        extra ``icas[ann]``.
    seed : int, default 0
        Seeds the model's initial weights, the training order and the clustering.
    num_of_threads, option, transfer, overwrite, out, order, resume, progress,
    recursive, report
        As for :class:`icas.cluster.Clusteror`.

    Notes
    -----
    Clusters of a single image are outliers, as in the classic path. In the
    merge, every batch cluster is represented by the mean of its members'
    embeddings (its representative file, flagged in the manifest, is the
    member nearest that mean); the representatives are clustered in
    file-name order (so merging ``dontmerge`` folders gives the full run's
    result) and batch clusters that land together become one cluster (as in
    the original tool, two clusters of one batch may be merged too); noise of
    the merge leaves its batch clusters as they were. kmeans, hierarchy and
    gaussian cluster the representatives with the same grid and selection
    rule as the batches (with few centres this can merge unrelated
    clusters: the grid cannot offer "no merge"). DBSCAN and HDBSCAN chain
    the centres like the classic path chains images, with a threshold from
    the data: two batch clusters merge when their centres are closer than
    the median root-mean-square distance of a batch cluster's members to its
    centre (an eps or min_samples fitted to a batch of images means nothing
    among a few dozen centres: on the digits, DBSCAN's own grid over the
    centres merged every cluster into one).

    Then, as in the classic path, outliers get a chance to join clusters of
    other batches: an outlier joins the nearest cluster of another batch when
    it is no farther from that cluster's centre than the cluster's own
    farthest member. Outliers are not linked to each other: clustered with
    the representatives, they chained unrelated clusters into one (DBSCAN on
    the digits: one cluster of 1330 images).
    """

    def __init__(
        self,
        images_folder_path,
        algorithm="kmeans",
        batch_size=1000,
        num_of_threads=None,
        option="full",
        transfer="copy",
        overwrite=False,
        *,
        model=None,
        checkpoint=None,
        image_size=None,
        channels=None,
        epochs=DEFAULT_EPOCHS,
        lr=1e-3,
        train_batch_size=64,
        loss="mse",
        device="auto",
        vgg_weights=None,
        feature_net=None,
        n_clusters=None,
        max_iter=None,
        eps=None,
        min_samples=None,
        min_cluster_size=None,
        max_cluster_size=None,
        reduce="spectral",
        neighbors="auto",
        seed=0,
        out=None,
        order="size",
        resume=False,
        progress=True,
        recursive=False,
        report=True,
    ):
        super().__init__(
            images_folder_path,
            method="dl",
            batch_size=batch_size,
            num_of_threads=num_of_threads,
            option=option,
            transfer=transfer,
            overwrite=overwrite,
            out=out,
            order=order,
            resume=resume,
            progress=progress,
            recursive=recursive,
            report=report,
        )
        self.algorithm = algorithm
        self.model = model
        self.checkpoint = checkpoint
        self.image_size = image_size
        self.channels = channels
        self.epochs = epochs
        self.lr = lr
        self.train_batch_size = train_batch_size
        self.loss = loss
        self.device = device
        self.vgg_weights = vgg_weights
        self.feature_net = feature_net
        self.grid_params = {
            "n_clusters": n_clusters,
            "max_iter": max_iter,
            "eps": eps,
            "min_samples": min_samples,
            "min_cluster_size": min_cluster_size,
            "max_cluster_size": max_cluster_size,
        }
        self.reduce = reduce
        self.neighbors = neighbors
        self.seed = seed

    # -- validation -------------------------------------------------------
    def _check(self):
        """Validate everything before any image is read or any epoch runs."""
        self.algorithm = check_algorithm(self.algorithm)
        if self.option not in OPTIONS:
            raise ValueError(f"option must be one of {', '.join(OPTIONS)}, got {self.option!r}")
        if self.transfer not in TRANSFERS:
            raise ValueError(
                f"transfer must be one of {', '.join(TRANSFERS)}, got {self.transfer!r}"
            )
        for name in ("batch_size", "train_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        e = self.epochs
        if isinstance(e, bool) or not isinstance(e, numbers.Integral) or e < 0:
            raise ValueError(f"epochs must be an integer >= 0, got {e!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.reduce not in REDUCTIONS:
            raise ValueError(f"reduce must be one of {', '.join(REDUCTIONS)}, got {self.reduce!r}")
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels!r}")
        s = self.image_size
        if s is not None and (
            isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 8 or s & (s - 1)
        ):
            raise ValueError(f"image_size must be a power of two >= 8, got {s!r}")
        if self.model is not None:
            check_embedder(self.model)
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            raise FileNotFoundError(f"{self.checkpoint}: checkpoint file does not exist")
        if self.epochs == 0 and self.model is None and self.checkpoint is None:
            raise ValueError("epochs=0 (no training) needs a model or a checkpoint")
        self._clusterer().grid()
        if self.neighbors not in NEIGHBORS:
            raise ValueError(
                f"neighbors must be one of {', '.join(NEIGHBORS)}, got {self.neighbors!r}"
            )
        if self.neighbors == "ann":
            from icas.dl.neighbors import require_faiss

            require_faiss()
        self._device = resolve_device(self.device)
        # No threshold, chain guard or verifying method on this path.
        self._candidate = None
        self._max_size = None

    def _clusterer(self, reduce: str | None = None) -> EmbeddingClusterer:
        return EmbeddingClusterer(
            self.algorithm,
            **self.grid_params,
            reduce=self.reduce if reduce is None else reduce,
            neighbors=self.neighbors,
            random_state=self.seed,
            n_threads=self.num_of_threads,
        )

    # -- model ------------------------------------------------------------
    def _input_spec(self, config: dict) -> tuple[int, int]:
        """(image_size, channels): the model's when its config says, checked
        against the ones asked for; else those, or 64 px and RGB."""
        who = self.checkpoint if self.checkpoint is not None else "the model"
        size, ch = config.get("image_size"), config.get("channels")
        if size is not None and self.image_size is not None and size != self.image_size:
            raise ValueError(
                f"{who}: the model takes {size} px inputs, image_size is {self.image_size}"
            )
        if ch is not None and self.channels is not None and ch != self.channels:
            raise ValueError(f"{who}: the model takes {ch} channels, channels is {self.channels}")
        return (int(size or self.image_size or DEFAULT_IMAGE_SIZE), int(ch or self.channels or 3))

    def _train_key(self, paths: list[str], size: int, initial_fp: str) -> str:
        stats = []
        for p in paths:
            try:
                st = os.stat(p)
                stats.append([p, st.st_size, st.st_mtime_ns])
            except OSError:
                stats.append([p, -1, -1])
        vgg = None
        if self.loss == "perceptual":
            vgg = (
                model_fingerprint(self.feature_net)
                if self.feature_net is not None
                else str(self.vgg_weights)
            )
        blob = json.dumps(
            [
                stats,
                size,
                self._channels,
                self.epochs,
                self.lr,
                self.train_batch_size,
                self.loss,
                self.seed,
                initial_fp,
                vgg,
            ]
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def _given_model(self, timings: dict):
        """The model of the checkpoint, or the model to use untrained, as
        (model, None, image_size, path, False); None when it is to be trained.
        Sets ``self._channels``. Runs before the output folder is made, so a
        checkpoint that does not fit fails first."""
        t = time.perf_counter()
        if self.checkpoint is not None:
            model, _ = load_checkpoint(self.checkpoint, self.model, device=self._device)
            config = model.config() if hasattr(model, "config") else {}
            size, self._channels = self._input_spec(config)
            timings["model"] = time.perf_counter() - t
            return model, None, size, str(self.checkpoint), False
        config = self.model.config() if hasattr(self.model, "config") else {}
        size, self._channels = self._input_spec(config)
        if self.epochs == 0:
            return self.model.to(self._device).eval(), None, size, "", False
        return None

    def _model(self, files: list[str], out_dir: Path, timings: dict):
        """Train the model (or load the one an earlier run trained on the same
        files with the same settings): (model, dataset, image_size, path, trained?)."""
        t = time.perf_counter()
        size = self._input_spec(self.model.config() if hasattr(self.model, "config") else {})[0]
        dataset = ImageFolderDataset(
            files,
            size,
            channels=self._channels,
            n_threads=self.num_of_threads,
            progress=self.progress,
        )
        timings["read"] = time.perf_counter() - t
        if len(dataset) == 0:
            return None, dataset, size, "", False
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = (
                self.model
                if self.model is not None
                else default_model(size, channels=self._channels)
            )
        key = self._train_key(dataset.paths, size, model_fingerprint(model))
        path = out_dir / DL_DIR / MODEL_FILE
        if path.is_file():
            try:
                meta = torch.load(path, map_location="cpu", weights_only=True).get("meta", {})
            except Exception:  # unreadable: train again and replace it
                meta = {}
            if meta.get("train_key") == key:
                model, _ = load_checkpoint(path, model, device=self._device)
                log.info("model trained by an earlier run on the same files loaded from %s", path)
                timings["model"] = time.perf_counter() - t
                return model, dataset, size, str(path), False
        t = time.perf_counter()
        trainer = Trainer(
            model,
            epochs=self.epochs,
            lr=self.lr,
            batch_size=self.train_batch_size,
            loss=self.loss,
            device=self._device,
            seed=self.seed,
            progress=self.progress,
            feature_net=self.feature_net,
            vgg_weights=self.vgg_weights,
        ).fit(dataset)
        save_checkpoint(
            path,
            model,
            train_key=key,
            loss=self.loss,
            epochs=self.epochs,
            history=trainer.history_,
            images=len(dataset),
        )
        timings["train"] = time.perf_counter() - t
        log.info(
            "model trained (%s loss %.5f -> %.5f) and saved to %s",
            self.loss,
            trainer.history_[0],
            trainer.history_[-1],
            path,
        )
        return model, dataset, size, str(path), True

    # -- clustering -------------------------------------------------------
    def _cluster(
        self, X: np.ndarray, name, selection: list, clusterer: EmbeddingClusterer | None = None
    ):
        c = (clusterer or self._clusterer()).fit(X)
        labels = relabel(c.labels_, min_size=2)  # one image alone is an outlier
        selection.append(
            _json_safe(
                {
                    "stage": name,
                    "images": len(X),
                    "algorithm": c.algorithm,
                    "best_params": c.best_params_,
                    "score": c.best_score_,
                    "dims": int(c.embedding_.shape[1]) if len(X) else 0,
                    "clusters": int(labels.max(initial=-1)) + 1,
                    "outliers": int((labels < 0).sum()),
                    "candidates": [
                        {
                            "params": k.params,
                            "clusters": k.n_clusters,
                            "noise": k.n_noise,
                            "silhouette": k.silhouette,
                            "davies_bouldin": k.davies_bouldin,
                            "calinski_harabasz": k.calinski_harabasz,
                            "score": k.score,
                            "note": k.note,
                        }
                        for k in c.candidates_
                    ],
                }
            )
        )
        return labels

    def _merge(
        self, results: list[_Batch], vectors: np.ndarray, paths: list[str], selection: list
    ) -> np.ndarray:
        """Global labels (per embedding row) after merging batches through their
        representatives; see the class notes."""
        n = len(vectors)
        unit = _unit(vectors)
        base = vectors if self.reduce == "none" else unit  # the merge's space
        members, batch_of, rep_rows = [], [], []  # per batch cluster
        outliers = []  # (row, batch)
        for b in results:
            reps = representatives(unit[b.rows], b.labels)
            for lab, rep in sorted(reps.items()):
                members.append(b.rows[b.labels == lab])
                batch_of.append(b.index)
                rep_rows.append(int(b.rows[rep]))
            outliers += [(int(r), b.index) for r in b.rows[b.labels < 0]]
        k = len(members)
        # A batch cluster enters the merge as the mean of its members'
        # embeddings (steadier than any one member), in file-name order of its
        # representative, so merging batch folders sees what a full run saw.
        centres = np.stack([base[m].mean(axis=0) for m in members]) if k else np.zeros((0, 1))
        merged = np.arange(k)
        if len(results) > 1 and k >= 2:
            order = np.array(sorted(range(k), key=lambda j: (Path(paths[rep_rows[j]]).name, j)))
            mlabels = np.empty(k, dtype=np.int64)
            spread = np.median(
                [
                    np.sqrt(((base[m] - c) ** 2).sum(axis=1).mean())
                    for m, c in zip(members, centres, strict=True)
                ]
            )
            mlabels[order] = self._cluster(
                centres[order], "merge", selection, self._merger(float(spread))
            )
            for lab in np.unique(mlabels[mlabels >= 0]):
                same = np.flatnonzero(mlabels == lab)
                merged[same] = same[0]
        glabels = np.full(n, -1, dtype=np.int64)
        for j, m in enumerate(members):
            glabels[m] = merged[j]
        if len(results) > 1 and k and outliers:
            self._adopt(outliers, base, members, centres, np.array(batch_of), merged, glabels)
        rows = np.concatenate([b.rows for b in results]) if results else np.zeros(0, np.int64)
        glabels[rows] = relabel(glabels[rows], min_size=2)
        return glabels

    def _merger(self, spread: float) -> EmbeddingClusterer:
        """How batch clusters are merged (see the class notes); ``spread`` is
        the median RMS distance of a batch cluster's members to its centre."""
        if self.algorithm in ("DBSCAN", "HDBSCAN"):
            # Chaining: centres closer than a typical member is to its centre.
            return EmbeddingClusterer(
                "DBSCAN",
                eps=[max(spread, 1e-12)],
                min_samples=[1],
                reduce="none",
                neighbors=self.neighbors,
                random_state=self.seed,
                n_threads=self.num_of_threads,
            )
        return self._clusterer("none" if self.reduce == "none" else "l2")

    @staticmethod
    def _adopt(outliers, base, members, centres, batch_of, merged, glabels) -> None:
        """An outlier joins the (merged) cluster of the nearest batch cluster of
        another batch whose centre it is as close to as that cluster's farthest
        member; otherwise it stays an outlier. Outliers never link to each
        other, so they cannot bridge clusters."""
        radius = np.array(
            [
                np.sqrt(((base[m] - c) ** 2).sum(axis=1).max())
                for m, c in zip(members, centres, strict=True)
            ]
        )
        rows = np.array([r for r, _ in outliers])
        own = np.array([b for _, b in outliers])
        for k in range(0, len(rows), 1024):  # bounded memory: 1024 x clusters at a time
            part = slice(k, k + 1024)
            d = np.sqrt(((base[rows[part], None, :] - centres[None, :, :]) ** 2).sum(axis=2))
            d[(d > radius[None, :] * (1 + 1e-9)) | (own[part, None] == batch_of[None, :])] = np.inf
            best = np.argmin(d, axis=1)
            ok = np.isfinite(d[np.arange(len(best)), best])
            glabels[rows[part][ok]] = merged[best[ok]]

    # -- the run ----------------------------------------------------------
    def process(self) -> DLClusterResult:
        self._check()
        src = Path(self.images_folder_path)
        if not src.is_dir():
            raise FileNotFoundError(f"{src}: input folder does not exist")
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        parsed = None
        if self.option == "merge":
            parsed = _batches.read_batch_folders(src)
            files = [str(p) for clusters, outl in parsed for p in [*sum(clusters, []), *outl]]
            default_out = src.with_name(src.resolve().name + "_merged")
        else:
            listed = _batches.list_files(src, recursive=self.recursive)
            if not listed:
                raise ValueError(f"{src}: no files to cluster")
            files = [str(p) for p in _batches.order_files(listed, self.order)]
            default_out = output.default_out(src)
        with _torch_threads(self.num_of_threads):
            given = self._given_model(timings)
        out_dir = output.prepare(
            src,
            Path(self.out) if self.out else default_out,
            overwrite=self.overwrite,
            resume=self.resume,
        )
        with _torch_threads(self.num_of_threads):
            if given is None:
                given = self._model(files, out_dir, timings)
            model, dataset, size, model_path, trained = given
            t = time.perf_counter()
            if model is None:  # nothing readable to train on
                emb_paths, vectors, skipped, cached = (
                    [],
                    np.zeros((0, 1), np.float32),
                    list(dataset.skipped),
                    False,
                )
            else:
                emb = embed_files(
                    model,
                    files,
                    image_size=size,
                    channels=self._channels,
                    cache_dir=out_dir / DL_DIR / "embeddings",
                    dataset=dataset,
                    device=self._device,
                    n_threads=self.num_of_threads,
                    progress=self.progress,
                )
                emb_paths, vectors, skipped, cached = (
                    emb.paths,
                    emb.vectors,
                    list(emb.skipped),
                    emb.from_cache,
                )
            timings["embed"] = time.perf_counter() - t
        t = time.perf_counter()
        selection: list = []
        results = self._batches(parsed, emb_paths, vectors, selection)
        unit = _unit(vectors.astype(np.float64))
        if self.option == "dontmerge":
            labels, batch_of, reps = self._batch_layout(results, emb_paths, unit)
            dest = self._batch_destinations(results, labels, batch_of)
        else:
            glabels = self._merge(results, vectors.astype(np.float64), emb_paths, selection)
            labels = {emb_paths[r]: int(glabels[r]) for b in results for r in b.rows}
            batch_of = {emb_paths[r]: b.index for b in results for r in b.rows}
            reps = {emb_paths[r] for r in representatives(unit, glabels).values()}
            dest = self._result_destinations(labels)
        timings["cluster"] = time.perf_counter() - t
        extra = {
            "linkage": None,
            "algorithm": self.algorithm,
            "model": model_path,
            "trained": trained,
            "image_size": size,
            "embeddings_from_cache": cached,
            "selection": selection,
        }
        placed = Placement(labels, batch_of, reps, {}, {}, dest)
        base = self._finish(out_dir, None, "none", placed, skipped, timings, t0, extra=extra)
        result = DLClusterResult(
            **vars(base),
            algorithm=self.algorithm,
            selection=selection,
            model_path=model_path,
            trained=trained,
            embeddings_from_cache=cached,
        )
        return result

    def _batches(self, parsed, paths: list[str], vectors: np.ndarray, selection: list):
        """Cluster each batch of embeddings (or take the clusters of batch folders)."""
        results = []
        if parsed is not None:
            row = {p: i for i, p in enumerate(paths)}
            for index, (clusters, outliers) in enumerate(parsed):
                members = [(str(p), k) for k, c in enumerate(clusters) for p in c]
                members += [(str(p), -1) for p in outliers]
                members = [(row[p], k) for p, k in members if p in row]
                rows = np.array([r for r, _ in members], dtype=np.int64)
                labs = relabel(np.array([k for _, k in members], dtype=np.int64), min_size=2)
                results.append(_Batch(index, rows, labs))
            return results
        chunks = _batches.split(list(range(len(paths))), self.batch_size)
        steps = enumerate(chunks)
        if self.progress and len(chunks) > 1:
            from tqdm import tqdm

            steps = tqdm(steps, total=len(chunks), desc="batches", unit="batch")
        for index, chunk in steps:
            rows = np.array(chunk, dtype=np.int64)
            labels = self._cluster(vectors[rows].astype(np.float64), index, selection)
            results.append(_Batch(index, rows, labels))
        return results

    def _batch_layout(self, results: list[_Batch], paths: list[str], unit: np.ndarray):
        labels, batch_of, reps = {}, {}, set()
        for b in results:
            for r, lab in zip(b.rows, b.labels, strict=True):
                labels[paths[r]] = int(lab)
                batch_of[paths[r]] = b.index
            reps.update(paths[b.rows[i]] for i in representatives(unit[b.rows], b.labels).values())
        return labels, batch_of, reps
