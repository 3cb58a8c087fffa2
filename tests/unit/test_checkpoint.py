"""The alerter's state checkpoint: what is written is what comes back, bit for bit, and a file
that does not fit (other tables, windows, worker or stream, too old, damaged) is refused whole."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from alerter import checkpoint
from common.models import Market, Point
from common.settings import Settings
from common.window import Board

STREAM = "arn:aws:dynamodb:local:000000000000:table/t-points/stream/2026-11-26T00:00:00.000"


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "table_prefix": "t",
        "worker_id": "a1",
        "rank_window": 600,
        "alert_window": 120,
        "fetch_interval": 10,
        "state_dir": tmp_path,
    }
    return Settings(**(values | overrides))


def new_board() -> Board:
    return Board.holding_alert_window(600, 120, 10)  # as the alerter makes it from `settings`


def busy_board(seed: int = 3) -> Board:
    """Forty markets over more than a window, with overwrites, removals and missing volumes;
    sealed points, some off the grid, some left the window and not yet taken out, some stale."""
    rng = random.Random(seed)
    board = new_board()
    for t in range(0, 900, 10):
        for i in range(40):
            market = Market("bitfinex", f"m{i}usd")
            price = round(rng.uniform(1e-6, 1e5), rng.randint(0, 8))
            volume = None if rng.random() < 0.1 else round(rng.uniform(0, 1e9), 2)
            board.apply(Point(market, t, price, volume))
            if rng.random() < 0.05:
                board.apply(Point(market, t - 30, price * 1.5, volume))  # an overwrite
            if rng.random() < 0.02:
                board.remove(market, t - 50)
            if rng.random() < 0.01:
                board.apply(Point(market, t - 3, price, volume))  # off the grid
            if rng.random() < 0.01:
                board.apply(Point(market, t - 203, price, volume))  # sealed: stale
        if t < 880:
            board.take_out(dict(board.pending), {})  # read back: nothing found
    assert board.pending and board.stale and board.odd
    return board


def test_a_checkpoint_restores_the_board_bit_for_bit(tmp_path: Path) -> None:
    config = settings(tmp_path)
    board = busy_board()
    markets = list(board.series)
    last_alert: dict[Market, int | None] = {
        m: (None if i % 3 else 870) for i, m in enumerate(markets)
    }
    positions = {"shardId-1": "000100", "shardId-2": "000250"}
    loaded = {m: 900.0 + i for i, m in enumerate(markets)}
    head, chunks = checkpoint.capture(config, board, STREAM, positions, last_alert, loaded, 1000.0)
    checkpoint.write(config, head, chunks)

    restored = new_board()
    state = checkpoint.decode(config.state_file.read_bytes(), config, STREAM, restored, 1010.0)
    assert state.positions == positions
    assert state.last_alert == last_alert and state.loaded == loaded
    assert (restored.odd, restored.pending, restored.stale) == (
        board.odd,
        board.pending,
        board.stale,
    )
    assert state.written_at == 1000.0 and len(state.last_alert) == len(markets)
    assert restored.window_end == board.window_end
    assert restored.rows() == board.rows()  # figures, latest points: identical floats
    # And the restored board goes on exactly as the original does.
    for b in (board, restored):
        b.apply(Point(markets[0], 900, 123.456, 7.0))
        b.apply(Point(markets[1], 850, 0.5, None))
    assert restored.rows() == board.rows()


def test_only_markets_whose_load_finished_are_saved(tmp_path: Path) -> None:
    config = settings(tmp_path)
    board = busy_board()
    done = list(board.series)[:5]
    head, chunks = checkpoint.capture(config, board, STREAM, {}, dict.fromkeys(done), {}, 1000.0)
    restored = new_board()
    checkpoint.decode(checkpoint.encode(head, chunks), config, STREAM, restored, 1000.0)
    assert set(restored.series) == set(done)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"table_prefix": "other"}, "prefix"),
        ({"worker_id": "a2"}, "owner"),
        ({"rank_window": 300}, "rank_window"),
        ({"alert_window": 60}, "alert_window"),
        ({"fetch_interval": 60}, "fetch_interval"),
    ],
)
def test_a_checkpoint_of_other_tables_windows_or_worker_is_refused(
    tmp_path: Path, change: dict[str, object], reason: str
) -> None:
    head, chunks = checkpoint.capture(settings(tmp_path), busy_board(), STREAM, {}, {}, {}, 1000.0)
    data = checkpoint.encode(head, chunks)
    with pytest.raises(ValueError, match=reason):
        checkpoint.decode(data, settings(tmp_path, **change), STREAM, new_board(), 1000.0)


def test_refused_when_the_stream_changed_it_is_too_old_or_damaged(tmp_path: Path) -> None:
    config = settings(tmp_path)
    board = busy_board()
    head, chunks = checkpoint.capture(
        config, board, STREAM, {}, dict.fromkeys(board.series), {}, 0.0
    )
    data = checkpoint.encode(head, chunks)
    with pytest.raises(ValueError, match="stream"):
        checkpoint.decode(data, config, STREAM + "x", new_board(), 10.0)
    with pytest.raises(ValueError, match="old"):
        checkpoint.decode(data, config, STREAM, new_board(), checkpoint.MAX_AGE + 1)
    config.state_file.parent.mkdir(parents=True, exist_ok=True)
    for damaged in (data[:-7], b"not a state file", data[:40]):
        config.state_file.write_bytes(damaged)
        restored = new_board()
        assert checkpoint.load(config, STREAM, restored) is None
        assert not restored.series and restored.window_end == 0
    config.state_file.unlink()
    assert checkpoint.load(config, STREAM, new_board()) is None  # none: the table, quietly
