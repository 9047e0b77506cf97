"""Shapes and masking of the Seq2Seq model (untrained weights are enough here)."""

import torch
import torch.nn.functional as F

from recommender.ml.model import Dropout, Seq2SeqConfig, Seq2SeqRecommender, give_id_rows, grow_model


def make_model(**overrides) -> Seq2SeqRecommender:
    torch.manual_seed(0)
    config = Seq2SeqConfig(
        **{"n_items": 30, "content_dim": 8, "max_len": 12, "d_model": 16, "list_len": 4, **overrides}
    )
    model = Seq2SeqRecommender(config).eval()
    model.items.trained[1:] = True
    model.items.content.normal_()
    return model


def encode(model, items):
    items = torch.tensor(items)
    zeros = torch.zeros_like(items)
    table = model.item_matrix()
    memory = model.encode(items, (items != 0).long(), zeros, table)
    return memory, items != 0, table


def test_encoder_and_first_step_shapes():
    model = make_model()
    memory, valid, table = encode(model, [[0, 0, 3, 4, 5], [1, 2, 3, 4, 5]])
    assert table.shape == (30, 16)
    assert memory.shape == (2, 5, 16)
    assert model.first_step(memory, valid).shape == (2, 5, 16)
    assert model.next_state(memory, valid).shape == (2, 16)


def test_encoder_is_causal_a_later_event_never_changes_an_earlier_state():
    model = make_model()
    a, _, _ = encode(model, [[1, 2, 3, 4, 5]])
    b, _, _ = encode(model, [[1, 2, 3, 9, 7]])
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-5)
    assert not torch.allclose(a[:, 3:], b[:, 3:])


def test_left_padding_does_not_change_the_state_that_ranks_items():
    model = make_model()
    memory, valid, _ = encode(model, [[0, 0, 0, 3, 4, 5], [7, 8, 9, 3, 4, 5]])
    alone, alone_valid, _ = encode(model, [[3, 4, 5]])
    padded_state = model.next_state(memory, valid)[0]
    alone_state = model.next_state(alone, alone_valid)[0]
    # Positions are right-aligned, so the padded row sees exactly what the short row sees.
    assert torch.allclose(padded_state, alone_state, atol=1e-5)
    assert torch.allclose(model.first_step(memory, valid)[0, -1], padded_state, atol=1e-5)


def test_untrained_item_is_its_content_alone_and_stays_out_of_the_training_softmax():
    model = make_model(dropout=0.0, id_dropout=0.0)
    table = model.items
    table.trained[5] = False
    items = torch.tensor([[1, 2, 3, 4, 6, 7], [8, 9, 10, 11, 12, 13]])
    targets = torch.cat([items[:, 1:], torch.tensor([[14], [15]])], 1)

    def losses() -> torch.Tensor:
        torch.manual_seed(1)  # the same list-step positions every time
        main, aux = model.loss(
            items, torch.ones_like(items), torch.zeros_like(items), targets, aux_positions=2
        )
        return torch.stack([main, aux])

    with torch.no_grad():
        table.id.weight[5] = 100.0  # never used: the item was not trained
        unit = F.normalize(table.content, dim=1)
        assert (unit[1:] @ unit[5]).topk(2).values[1] < 0.9  # no trained item is its twin
        side = table.project(table.content)
        assert torch.allclose(model.item_matrix()[5], side[5])
        before = losses()
        # Content that would win every softmax changes nothing: the item is never a negative.
        table.content[5] = table.content_proj.weight.sum(0) * 1e3
        after = losses()
        table.trained[5] = True
        as_trained = losses()
    assert torch.allclose(before, after)
    assert (as_trained > after + 1.0).all()  # scored, the item would dominate both losses


def test_untrained_twin_of_a_trained_item_takes_its_id():
    model = make_model()
    table = model.items
    table.trained[5:7] = False
    with torch.no_grad():
        table.content[5] = table.content[7] * 2 + 0.01 * torch.randn(8)  # the same text, re-published
        table.content[6] = F.normalize(table.content[7], dim=0) + F.normalize(
            table.content[8], dim=0
        )  # related
        matrix, side = model.item_matrix(), table.project(table.content)
        assert torch.allclose(matrix[5], side[5] + table.id.weight[7], atol=1e-6)
        unit = F.normalize(table.content, dim=1)
        assert (unit[table.trained] @ unit[6]).max() < 0.9
        assert torch.allclose(matrix[6], side[6])
        assert torch.allclose(model.items(torch.tensor([5, 6, 7])), matrix[[5, 6, 7]])


def test_loss_is_finite_with_padding_and_list_steps_and_sampled_softmax():
    model = make_model().train()
    items = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7, 8]])
    targets = torch.cat([items[:, 1:], torch.tensor([[7], [9]])], 1).masked_fill(items == 0, 0)
    main, aux = model.loss(items, (items != 0).long(), torch.zeros_like(items), targets, aux_positions=2)
    assert torch.isfinite(main) and aux is not None and torch.isfinite(aux)
    (main + aux).backward()
    negatives = torch.arange(1, 20)
    log_q = torch.full((30,), -3.0)
    sampled, _ = model.loss(
        items, (items != 0).long(), torch.zeros_like(items), targets, negatives=negatives, log_q=log_q
    )
    assert torch.isfinite(sampled)


def test_later_targets_add_their_weighted_cross_entropy_to_the_next_item_loss():
    model = make_model()  # eval mode: no dropout, so both losses see the same logits
    items = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    types, gaps = (items != 0).long(), torch.zeros_like(items)
    targets = torch.tensor([[0, 2, 3, 4, 10], [6, 7, 8, 9, 11]])
    later = torch.tensor([[[0], [3], [4], [10], [0]], [[7], [8], [9], [11], [0]]])
    base, _ = model.loss(items, types, gaps, targets)
    both, _ = model.loss(items, types, gaps, targets, later=later, later_weight=0.5)
    # By hand: the same logits score the next item (weight 1) and, where it exists, the one after (0.5).
    table = model.item_matrix()
    states = model.first_step(model.encode(items, types, gaps, table), items != 0)
    logits = states @ table.T
    logits[..., 0] = float("-inf")
    has = targets != 0
    nll_next = torch.nn.functional.cross_entropy(logits[has], targets[has], reduction="none")
    goal = later[..., 0][has]
    nll_later = torch.nn.functional.cross_entropy(logits[has], goal.clamp(min=1), reduction="none")
    expected = (nll_next + 0.5 * nll_later * (goal != 0)).mean()
    assert torch.allclose(base, nll_next.mean(), atol=1e-4)
    assert torch.allclose(both, expected, atol=1e-4)
    both.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # Sampled softmax: each goal against the shared negatives, minus the negatives that are a goal of the row.
    negatives = torch.arange(1, 20)
    sampled, _ = model.loss(
        items, types, gaps, targets, negatives=negatives, log_q=torch.zeros(30), later=later, later_weight=0.5
    )
    rows = []
    for state, goals in zip(states[has], torch.stack([targets[has], goal], 1), strict=True):
        keep = negatives[~torch.isin(negatives, goals)]
        loss = 0.0
        for weight, item in zip((1.0, 0.5), goals.tolist(), strict=True):
            if item:
                candidates = torch.cat([torch.tensor([item]), keep])
                scores = table[candidates] @ state
                loss = loss + weight * torch.nn.functional.cross_entropy(scores[None], torch.tensor([0]))
        rows.append(loss)
    assert torch.allclose(sampled, torch.stack(rows).mean(), atol=1e-4)


def test_generate_never_repeats_and_never_picks_a_banned_candidate():
    model = make_model()
    memory, valid, table = encode(model, [[1, 2, 3], [4, 5, 6]])
    candidates = torch.arange(10, 20).repeat(2, 1)
    banned = torch.zeros_like(candidates, dtype=torch.bool)
    banned[:, :3] = True
    picks, logits = model.generate(memory, valid, table, 4, banned, candidates)
    assert picks.shape == (2, 4)
    for row in picks.tolist():
        assert len(set(row)) == 4
        assert not set(row) & {0, 1, 2}
    assert torch.isfinite(logits).all()


def test_grow_model_keeps_every_learned_weight_and_adds_empty_rows():
    model = make_model()
    grown = grow_model(model, n_items=35, n_event_types=3).eval()
    assert grown.items.id.weight.shape == (35, 16)
    assert torch.equal(grown.items.id.weight[:30], model.items.id.weight)
    assert not grown.items.trained[30:].any()
    memory, _valid, _ = encode(model, [[1, 2, 3]])
    items = torch.tensor([[1, 2, 3]])
    grown_memory = grown.encode(items, torch.ones_like(items), torch.zeros_like(items), grown.item_matrix())
    assert torch.allclose(memory, grown_memory, atol=1e-5)


def test_the_exact_cross_entropy_in_chunks_has_the_one_pass_value_and_gradient(monkeypatch):
    """Large catalogues split the logits by rows and recompute them in backward: same numbers."""
    from recommender.ml import model as model_module

    items = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])
    types, gaps = (items != 0).long(), torch.zeros_like(items)
    targets = torch.cat([items[:, 1:], torch.tensor([[7], [9], [13]])], 1).masked_fill(items == 0, 0)

    def loss_and_grads():
        model = make_model()
        main, aux = model.loss(items, types, gaps, targets, aux_positions=1)
        torch.manual_seed(0)
        (main + aux).backward()
        return main.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    torch.manual_seed(1)
    whole, whole_grads = loss_and_grads()
    monkeypatch.setattr(model_module, "EXACT_ONE_PASS_ELEMENTS", 30 * 8)
    monkeypatch.setattr(model_module, "EXACT_CHUNK_ELEMENTS", 30 * 4)  # 4 rows per chunk
    chunks = []
    real = torch.utils.checkpoint.checkpoint
    spy = lambda *args, **kw: chunks.append(1) or real(*args, **kw)  # noqa: E731
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", spy)
    torch.manual_seed(1)
    chunked, chunked_grads = loss_and_grads()
    assert len(chunks) >= 3  # the chunked path ran
    assert torch.allclose(whole, chunked, atol=1e-5)
    assert whole_grads.keys() == chunked_grads.keys()
    for name, grad in whole_grads.items():
        assert torch.allclose(grad, chunked_grads[name], atol=1e-5), name


def test_list_steps_as_a_set_learn_every_true_next_item_not_yet_listed():
    """One qualifying position per row (length = list_len): the list loss by hand, both target kinds."""
    model = make_model()  # eval: no dropout
    items = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    targets = torch.tensor([[2, 3, 4, 9], [6, 7, 8, 10]])
    types, gaps = (items != 0).long(), torch.zeros_like(items)
    table = model.item_matrix()
    memory = model.encode(items, types, gaps, table)
    listed = targets  # position 0 is the only one with the next 4 items known
    key_mask = torch.tensor([[True, False, False, False]] * 2)
    states = model.list_steps(memory, key_mask, memory[:, 0], listed[:, :-1], table)[:, 1:]
    expected_order, expected_set = [], []
    for row in range(2):
        for k in range(3):
            logits = states[row, k] @ table.T
            logits[0] = float("-inf")
            logits[listed[row, : k + 1]] = float("-inf")
            nll = -torch.log_softmax(logits, 0)
            expected_order.append(nll[listed[row, k + 1]])
            expected_set.append(nll[listed[row, k + 1 :]].mean())
    valid = items != 0
    untrained = model.items.untrained()
    as_order = model._list_loss(memory, valid, targets, table, untrained, 1)
    as_set = model._list_loss(memory, valid, targets, table, untrained, 1, as_set=True)
    assert torch.allclose(as_order, torch.stack(expected_order).mean(), atol=1e-5)
    assert torch.allclose(as_set, torch.stack(expected_set).mean(), atol=1e-5)


def test_content_is_stored_in_half_precision_and_the_whole_table_is_projected_a_slice_at_a_time(monkeypatch):
    """Sliced projection of the half-precision table gives the rows' own projections, in full precision."""
    import recommender.ml.model as model_module

    model = make_model(content_dim=8)
    table = model.items
    with torch.no_grad():
        table.content.normal_()
    assert table.content.dtype == torch.float16
    whole = table.side()
    monkeypatch.setattr(model_module, "SIDE_SLICE", 7)  # 30 rows: five slices
    sliced = table.side()
    assert sliced.dtype == torch.float32
    assert torch.allclose(sliced, whole)
    expected = table.project(table.content)
    assert torch.allclose(sliced, expected)
    # a full-precision vector from outside the table (an item added at serving) projects alike
    outside = table.content[4].float()
    assert torch.allclose(table.side_of(outside[None], None)[0], expected[4])


def test_with_id_rows_for_read_items_only_the_table_serves_what_one_row_per_item_serves():
    """The compact ID table changes where IDs are kept, not any served vector (trained, new, twin)."""
    full = make_model()  # one ID row per item
    with torch.no_grad():
        full.items.trained[20:] = False  # items 20-29 were never read
        full.items.content[25] = full.items.content[3]  # a re-published copy of item 3: its twin
    compact = Seq2SeqRecommender(Seq2SeqConfig(**{**full.config.__dict__, "n_id_rows": 20})).eval()
    state = {k: v for k, v in full.state_dict().items() if k != "items.id.weight"}
    compact.load_state_dict(state, strict=False)
    compact = give_id_rows(compact, torch.arange(20))  # row 0 is padding: it gets none
    with torch.no_grad():
        compact.items.id.weight[1:] = full.items.id.weight[1:20]
    assert compact.items.id.weight.shape == (20, 16)
    assert torch.equal(compact.items.id_row[:20], torch.arange(20, dtype=torch.int32))
    assert not compact.items.id_row[20:].any()
    served = compact.item_matrix()
    assert torch.allclose(served, full.item_matrix(), atol=1e-6)
    side = compact.items.side()
    assert torch.allclose(served[25], side[25] + full.items.id.weight[3], atol=1e-6)  # the twin's ID
    assert torch.allclose(served[26], side[26])  # unread and no twin: its content alone
    rows = torch.tensor([25, 4, 26])
    assert torch.allclose(compact.items(rows), served[rows], atol=1e-6)

    # A refresh that reads two more items gives them new rows, zeros, and keeps the rest.
    grown = give_id_rows(compact, torch.tensor([4, 22, 21]))
    assert grown.config.n_id_rows == 22
    assert grown.items.id_row[21] == 20 and grown.items.id_row[22] == 21 and grown.items.id_row[4] == 4
    assert torch.equal(grown.items.id.weight[:20], compact.items.id.weight)
    assert not grown.items.id.weight[20:].any()
    assert give_id_rows(full, torch.tensor([22])) is full  # one row per item: nothing to give


def test_dropout_zeroes_a_share_p_keeps_the_mean_and_is_the_identity_in_eval():
    drop = Dropout(0.25)
    x = torch.ones(200_000, requires_grad=True)
    torch.manual_seed(0)
    y = drop(x)
    zeroed = (y == 0).float().mean().item()
    assert abs(zeroed - 0.25) < 0.01
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.75))
    assert abs(y.mean().item() - 1.0) < 0.01
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient flows through the kept elements only
    drop.eval()
    assert torch.equal(drop(x), x)
