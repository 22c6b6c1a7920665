"""``jobgate result``'s views: the outcome and output of a finished job, as text and as the
``--json`` document, and whether the output lost its beginning (told from the job's log).
Record text goes through :func:`jobgate.cli.render.clean`, as in every human view."""

from __future__ import annotations

from jobgate.cli.render import DETAIL_MAX, NAME_MAX, TRAILER_BYTES, clean, read_end
from jobgate.state import model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


# -- result ------------------------------------------------------------------------------
def _bytes_of(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return text.encode("utf-8", "replace")


def output_cut(job: model.Job) -> dict[str, Any]:
    """Whether ``job``'s ``output`` lost its beginning, told from its log: the worker
    keeps the last 64 KiB of the log's bytes after ``outputOffset``, less jobgate's own
    lines (:func:`jobgate.jobs.output.read_output`); what it kept is found again there.
    ``outputTruncated`` (None: cannot be told: the log is gone or changed, or the output
    is an agent's final message of about that size), ``outputOmittedBytes`` (the log's
    bytes after ``outputOffset`` before what ``output`` holds; None when unknown),
    ``outputStartsMidLine`` and ``logFile``."""
    from jobgate.jobs.output import OUTPUT_KEEP_BYTES as keep
    from jobgate.jobs.output import is_progress_line

    log = job.get("logFile")
    facts: dict[str, Any] = {"outputTruncated": False, "outputOmittedBytes": 0}
    facts.update(outputStartsMidLine=False, logFile=log)
    output = job.get("output")
    if not isinstance(output, str) or not output:
        return facts
    offset = job.get("outputOffset")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        offset = 0
    found = read_end(log, keep + TRAILER_BYTES)
    data, start = found or (b"", 0)
    end = len(data)  # past jobgate's own lines after the output (its end, a cancel...)
    while end > 0:
        begin = data.rfind(b"\n", 0, end - 1) + 1
        if not is_progress_line(data[begin:end].decode("utf-8", "replace")):
            break
        end = begin
    if not output.endswith("\n") and data[end - 1 : end] == b"\n":
        end -= 1  # the newline the worker put after an unfinished last line
    window = max(offset, start + end - keep)  # where the worker's read began
    text = data[window - start : end].decode("utf-8", "surrogateescape")
    again = "".join(ln for ln in text.splitlines(keepends=True) if not is_progress_line(ln))
    if found is None or window < start or again != output:
        # not what the log holds (an agent's final message; a log gone or changed): only
        # its size can say it may have been cut
        if len(_bytes_of(output)) >= keep - TRAILER_BYTES:
            facts.update(outputTruncated=None, outputOmittedBytes=None)
        return facts
    if window > offset:
        mid = window <= start or data[window - start - 1] != ord("\n")
        facts.update(outputTruncated=True, outputOmittedBytes=window - offset)
        facts["outputStartsMidLine"] = mid
    return facts


def result_views(job: model.Job, cut: dict[str, Any]) -> tuple[model.Job, dict[str, Any]]:
    """``result``: the job as shown to people, and the ``--json`` document. A review job's
    structured findings come from :func:`jobgate.agents.review.for_result` (imported only
    for one: it costs a ``dataclasses`` import)."""
    if job.get("kind") != "review":
        return job, {"job": job, **cut}
    from jobgate.agents.review import for_result

    return for_result(job, cut)


def result_text(job: model.Job, cut: dict[str, Any] | None = None) -> str:
    """``result``: the outcome, then the output; where it was cut (``cut``: see
    :func:`output_cut`), a marker line first, and it starts at a whole line (the bytes of
    the partial first line are counted as not shown)."""
    code = job.get("exitCode")
    out = [
        f"job {clean(job.get('id'), NAME_MAX)}: {clean(job.get('status'), NAME_MAX)}"
        + (f" (exit code {clean(code, 20)})" if code is not None else "")
    ]
    if job.get("errorMessage"):
        out.append(f"error: {clean(job.get('errorMessage'), DETAIL_MAX)}")
    from jobgate.agents.threads import facts

    thread = facts(job)
    if thread:
        line = f"agent session: {clean(job.get('agentSessionId'), NAME_MAX)}"
        if thread.get("continueCommand"):
            line += f" (continue it: {clean(thread['continueCommand'], DETAIL_MAX)}"
            line += f"; or: jobgate task --resume {clean(job.get('id'), NAME_MAX)} PROMPT)"
        out.append(line)
    output = job.get("output")
    if isinstance(output, str) and output:
        out.append("--- output ---")
        cut = cut or {}
        truncated = cut.get("outputTruncated", False)
        log = clean(cut.get("logFile"), DETAIL_MAX)
        if truncated is None:
            out.append(f"[... output may have been cut to its last 64 KiB; log: {log}]")
        elif truncated:
            omitted = cut.get("outputOmittedBytes") or 0
            newline = output.find("\n")
            where = "; full log: "
            if cut.get("outputStartsMidLine") and 0 <= newline < len(output) - 1:
                omitted += len(_bytes_of(output[: newline + 1]))
                output = output[newline + 1 :]
            elif cut.get("outputStartsMidLine"):
                where = ", the line below starts mid-line; full log: "
            out.append(f"[... first {omitted:,} bytes not shown{where}{log}]")
        out.append(output.rstrip("\n"))
    return "\n".join(out) + "\n"
