"""Checkpoints that a failed or interrupted save cannot take away."""
import contextlib
import glob
import os
import os.path as osp
import zipfile

from mmengine.dist import barrier, is_distributed, is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook

from ..checkpoint import checkpoint_dir_files
from ..registry import HOOKS

TMP_SUFFIX = '.tmp'


def is_complete_checkpoint(path: str) -> bool:
    """Whether ``path`` is a whole ``torch.save`` file, or a directory of
    whole files (a sharded checkpoint, as ``FSDPStrategy`` writes with
    ``state_dict_cfg='local'``, or DeepSpeed's; see
    :func:`mmlr.checkpoint.checkpoint_dir_files`).

    torch writes a zip archive whose directory comes last, so a file cut
    short by a full disk or a killed process has none and fails here; the
    check reads the directory, not the tensors.

    Args:
        path (str): The file or directory to check.
    """
    if osp.isdir(path):
        shards = checkpoint_dir_files(path)
        return bool(shards) and all(map(is_complete_checkpoint, shards))
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def resumable_checkpoint(work_dir: str) -> tuple[str | None, str | None]:
    """The checkpoint ``--resume auto`` should use, and why, if it is not
    the one ``last_checkpoint`` names.

    mmengine resumes from the path written in ``WORK_DIR/last_checkpoint``.
    When that file is missing or names a checkpoint that is gone or cut
    short, the newest complete ``*.pth`` in the work dir (by modification
    time) is used instead.

    Args:
        work_dir (str): The run's work dir.

    Returns:
        tuple: The path (None: start from scratch) and a message saying why
        it differs from ``last_checkpoint`` (None when it does not).
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    named = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
    if named is not None and is_complete_checkpoint(named):
        return named, None
    candidates = sorted(
        glob.glob(osp.join(work_dir, '*.pth')),
        key=osp.getmtime,
        reverse=True)
    found = next((c for c in candidates if is_complete_checkpoint(c)), None)
    if named is None:
        if found is None:
            return None, None
        problem = f'{pointer} is missing or empty'
    else:
        state = 'missing' if not osp.exists(named) else 'not a whole checkpoint'
        problem = f'{pointer} names {named}, which is {state}'
    if found is None:
        return None, f'{problem}, and no complete checkpoint is left in ' \
            f'{work_dir}: training starts from scratch'
    return found, f'{problem}; resuming from {found}, the newest complete ' \
        'checkpoint in the work dir'


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Save checkpoints so that a failed save never loses the last good one.

    mmengine's ``CheckpointHook`` deletes the oldest checkpoint
    (``max_keep_ckpts``) or the previous best one *before* it writes the new
    one, and writes it in place: with ``max_keep_ckpts=1``, a full disk or a
    Ctrl-C during a save leaves no loadable checkpoint, and
    ``last_checkpoint`` naming a deleted file. With this hook the
    ``CheckpointHook`` of the run:

    - writes each checkpoint under a temporary name (``<name>.tmp``) and
      renames it when it is complete;
    - updates ``last_checkpoint`` only after that, by a rename too;
    - deletes old checkpoints only after the new one is in place (a failed
      save deletes nothing and removes its temporary file).

    And a resume from the latest checkpoint (``--resume`` with no path, or
    ``resume=True`` without ``load_from``) whose ``last_checkpoint`` is
    stale falls back to the newest complete checkpoint of the work dir,
    with a warning.

    ``tools/train.py`` adds it to every run; with another entry point add it
    as a custom hook. Checkpoints on other storage backends than the local
    disk are left to ``CheckpointHook``.

    Example:
        >>> default_hooks = dict(
        ...     checkpoint=dict(type='CheckpointHook', interval=1,
        ...                     max_keep_ckpts=1))
        >>> custom_hooks = [dict(type='mmlr.SafeCheckpointHook')]
    """

    priority = 'VERY_LOW'

    def before_run(self, runner) -> None:
        # Runner.train calls load_or_resume after before_run
        # (FlexibleRunner before it: mmlr's calls the method below).
        self.choose_resume_checkpoint(runner)

    def choose_resume_checkpoint(self, runner) -> None:
        """Before the runner resumes from its work dir's latest checkpoint:
        if ``last_checkpoint`` is stale, resume from the newest complete
        checkpoint instead (or start from scratch), with a warning."""
        if not runner._resume or runner._load_from is not None:
            return
        path, why = resumable_checkpoint(runner.work_dir)
        if why is not None:
            runner.logger.warning(why)
            runner._load_from = path
            runner._resume = path is not None

    def before_train(self, runner) -> None:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not getattr(
                    hook, '_saves_safely', False):
                self._make_safe(runner, hook)

    def _make_safe(self, runner, hook: CheckpointHook) -> None:
        """Route the hook's two saving methods through :meth:`_saving`."""
        if not isinstance(hook.file_backend, LocalBackend):
            return
        for method in ('_save_checkpoint_with_step', '_save_best_checkpoint'):
            original = getattr(hook, method)

            def safe(*args, _original=original, **kwargs):
                with self._saving(runner, hook):
                    return _original(*args, **kwargs)

            setattr(hook, method, safe)
        hook._saves_safely = True

    @contextlib.contextmanager
    def _saving(self, runner, hook: CheckpointHook):
        """While ``hook`` saves: checkpoints go to a temporary file that is
        renamed when complete, removals wait until the save succeeded, and
        ``last_checkpoint`` is rewritten by a rename."""
        removals = []
        written = []
        save = runner.save_checkpoint
        remove, rmtree = hook.file_backend.remove, hook.file_backend.rmtree

        def save_to_temporary(out_dir, filename, *args, **kwargs):
            final = osp.join(out_dir, filename)
            temporary = final + TMP_SUFFIX
            written.append(temporary)
            # Every rank calls it (ZeRO gathers state inside); rank 0 writes.
            save(out_dir, filename + TMP_SUFFIX, *args, **kwargs)
            if is_distributed():
                # A sharded checkpoint is a directory every rank writes
                # into: rename it when all are done.
                barrier()
            if is_main_process():
                os.replace(temporary, final)
            written.remove(temporary)

        runner.save_checkpoint = save_to_temporary
        hook.file_backend.remove = removals.append
        hook.file_backend.rmtree = removals.append
        try:
            yield
        except BaseException:
            for temporary in written:
                with contextlib.suppress(OSError):
                    os.remove(temporary)
            raise
        finally:
            runner.save_checkpoint = save
            hook.file_backend.remove, hook.file_backend.rmtree = remove, rmtree
        if not is_main_process():
            return
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        if hook.last_ckpt is not None:
            with open(pointer + TMP_SUFFIX, 'w') as f:
                f.write(str(hook.last_ckpt))
            os.replace(pointer + TMP_SUFFIX, pointer)
        for path in removals:
            if osp.isdir(path):
                rmtree(path)
            elif osp.isfile(path):
                remove(path)
