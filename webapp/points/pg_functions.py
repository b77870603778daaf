"""The ledger's transfers as PostgreSQL functions: one call, one round trip, per transfer.

A transfer written from Python is several statements, and on a 2-core machine the
client's CPU per statement is what bounds throughput (docs/points-ledger.md). Each
function here writes one transfer of one kind exactly as the general path
(`ledger.write`) writes it: the same rows, column by column, the same row locks in the
same order (the citizen's row first, a merchant's next, a shared system row last), the
same checks. It is called as its own implicit transaction (no BEGIN, no COMMIT: psycopg's
autocommit) with a server-side prepared statement (webapp.pglane), so the
client sends the statement's name and a few parameters, and reads one row back.

The contract of every function: **a row back means the transfer is written and
committed; no row, or an error, means nothing was written** (the implicit transaction
rolled back, or the function returned before writing anything). The caller then takes
the general path, which gives the reason (unknown program, too few points, budget
exhausted...), replays an idempotency key already used, or opens a missing account. A
function never decides a refusal's wording, never replays, never opens an account: those
are rare, and stay in Python where the reasons live.

Versioning: a function's name carries its version (`points_grant_v1`). A released
version's text is never edited: a change is a new constant `..._V2`, created by a new
Alembic migration (which leaves v1 in place until the code that calls it is gone), and
the code switches to the new name. During a rolling deploy, old processes call v1 and new
ones v2. The same texts are created by `Base.metadata.create_all` (tests, the embedded
demo, the bench: `install`), and by the migrations (deployments).

The functions are PL/pgSQL, not SQL functions: PL/pgSQL caches each statement's plan for
the connection's life (a SQL function is planned on every call), and statements run one
after another, in the lock order written here.
"""

from __future__ import annotations

from sqlalchemy import DDL, Table, event

# Kinds and statuses are the enum values of webapp.points.models (literals here: a
# released function's text never changes, whatever the Python code becomes).

GRANT_V1_NAME = "points_grant_v1"
GRANT_V1 = """
CREATE OR REPLACE FUNCTION points_grant_v1(
    p_program integer, p_municipality integer, p_owner text, p_key text, p_hash text,
    p_now timestamptz)
RETURNS TABLE (o_transfer bigint, o_code text, o_points bigint, o_expiry_days integer,
               o_balance bigint)
LANGUAGE plpgsql AS $fn$
-- A staff grant from an uncapped program to a citizen whose account exists
-- (webapp.points.grant_pg). No row: nothing written.
DECLARE
    prog record;
    citizen_id bigint;
    citizen_balance bigint;
    transfer_id bigint;
BEGIN
    SELECT p.id, p.code, p.municipality_id, p.account_id, p.points_per_grant AS points,
           p.expiry_days
      INTO prog
      FROM points_programs p
     WHERE p.id = p_program AND p.active
       AND (p.starts_at IS NULL OR p.starts_at <= p_now)
       AND (p.ends_at IS NULL OR p.ends_at > p_now)
       AND p.category <> 'partner_bonus'
       AND p.cap_points_per_citizen IS NULL AND p.cap_grants_per_citizen IS NULL
       AND p.municipality_id = COALESCE(p_municipality, p.municipality_id);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- The citizen's row: its lock first, as in ledger.write.
    UPDATE points_accounts c SET balance = c.balance + prog.points
     WHERE c.municipality_id = prog.municipality_id AND c.kind = 'citizen'
       AND c.owner = p_owner
    RETURNING c.id, c.balance INTO citizen_id, citizen_balance;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    INSERT INTO points_transfers (municipality_id, kind, status, debit_account_id,
        credit_account_id, amount, idempotency_key, payload_hash, program_id,
        credit_balance, created_at)
    VALUES (prog.municipality_id, 'grant', 'posted', prog.account_id, citizen_id,
        prog.points, p_key, p_hash, prog.id, citizen_balance, p_now)
    RETURNING id INTO transfer_id;
    INSERT INTO points_lots (account_id, transfer_id, amount, remaining, expires_at)
    VALUES (citizen_id, transfer_id, prog.points, prog.points,
        p_now + prog.expiry_days * interval '24 hours');
    -- The budget, a shared hot row, last: locked only until the commit right after.
    -- Its CHECK (bounded_not_negative) refuses an overspent budget and undoes it all.
    UPDATE points_accounts SET balance = balance - prog.points WHERE id = prog.account_id;
    o_transfer := transfer_id;
    o_code := prog.code;
    o_points := prog.points;
    o_expiry_days := prog.expiry_days;
    o_balance := citizen_balance;
    RETURN NEXT;
END
$fn$
"""

SPEND_V1_NAME = "points_spend_v1"
SPEND_V1 = """
CREATE OR REPLACE FUNCTION points_spend_v1(
    p_merchant integer, p_owner text, p_points bigint, p_key text, p_hash text,
    p_now timestamptz)
RETURNS TABLE (o_transfer bigint, o_merchant text, o_balance bigint)
LANGUAGE plpgsql AS $fn$
-- A citizen pays a merchant (webapp.points.spend_pg): lots taken soonest expiry first,
-- expired lots skipped. No row: nothing written.
DECLARE
    m record;
    citizen_id bigint;
    citizen_balance bigint;
    merchant_balance bigint;
    transfer_id bigint;
    lot record;
    take bigint;
    left_over bigint := p_points;
BEGIN
    SELECT mm.municipality_id, mm.account_id, mm.name INTO m
      FROM points_merchants mm
     WHERE mm.id = p_merchant AND mm.active
       AND EXISTS (SELECT 1 FROM points_accepted_categories a
                    WHERE a.municipality_id = mm.municipality_id
                      AND a.category = mm.category);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- The citizen's row first (bounded: the UPDATE is the check), then the merchant's.
    UPDATE points_accounts c SET balance = c.balance - p_points
     WHERE c.municipality_id = m.municipality_id AND c.kind = 'citizen'
       AND c.owner = p_owner AND c.balance - p_points - c.debits_pending >= 0
    RETURNING c.id, c.balance INTO citizen_id, citizen_balance;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE points_accounts a SET balance = a.balance + p_points
     WHERE a.id = m.account_id AND a.kind = 'merchant'
       AND a.municipality_id = m.municipality_id
    RETURNING a.balance INTO merchant_balance;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'points: the merchant account does not match';
    END IF;
    INSERT INTO points_transfers (municipality_id, kind, status, debit_account_id,
        credit_account_id, amount, idempotency_key, payload_hash, debit_balance,
        credit_balance, created_at)
    VALUES (m.municipality_id, 'spend', 'posted', citizen_id, m.account_id, p_points,
        p_key, p_hash, citizen_balance, merchant_balance, p_now)
    RETURNING id INTO transfer_id;
    -- Lots: unexpired, soonest expiry first (ix_points_lots_live); under the citizen's
    -- row lock, as every change of a lot is.
    FOR lot IN
        SELECT l.id, l.remaining FROM points_lots l
         WHERE l.account_id = citizen_id AND l.remaining > 0 AND l.expires_at > p_now
         ORDER BY l.expires_at, l.id
    LOOP
        take := LEAST(lot.remaining, left_over);
        UPDATE points_lots SET remaining = remaining - take WHERE id = lot.id;
        INSERT INTO points_lot_moves (lot_id, transfer_id, delta)
        VALUES (lot.id, transfer_id, -take);
        left_over := left_over - take;
        EXIT WHEN left_over = 0;
    END LOOP;
    IF left_over <> 0 THEN
        -- The balance covers it but live lots do not (some expired, not yet swept).
        RAISE EXCEPTION 'points: insufficient live lots' USING ERRCODE = 'P0001';
    END IF;
    o_transfer := transfer_id;
    o_merchant := m.name;
    o_balance := citizen_balance;
    RETURN NEXT;
END
$fn$
"""

REFUND_V1_NAME = "points_refund_v1"
REFUND_V1 = """
CREATE OR REPLACE FUNCTION points_refund_v1(
    p_merchant integer, p_spend bigint, p_points bigint, p_key text, p_hash text,
    p_now timestamptz, p_window_days integer)
RETURNS TABLE (o_transfer bigint, o_left bigint)
LANGUAGE plpgsql AS $fn$
-- A merchant gives back (part of) a spend, inside its municipality's refund window
-- (webapp.points.spend_pg): a reversal, its points back into the lots the spend took
-- from, latest expiry first. p_window_days: the platform's window, for a municipality
-- without its own (webapp.points.retention.window). No row: nothing written.
DECLARE
    m record;
    orig record;
    citizen_balance bigint;
    merchant_balance bigint;
    new_id bigint;
    lot record;
    give bigint;
    left_over bigint := p_points;
    reversed bigint;
BEGIN
    SELECT mm.municipality_id, mm.account_id,
           COALESCE(mu.refund_window_days, p_window_days) AS window_days INTO m
      FROM points_merchants mm JOIN points_municipalities mu ON mu.id = mm.municipality_id
     WHERE mm.id = p_merchant;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT t.id, t.amount, t.debit_account_id, t.municipality_id INTO orig
      FROM points_transfers t
     WHERE t.id = p_spend AND t.kind = 'spend' AND t.status = 'posted'
       AND t.credit_account_id = m.account_id
       AND p_now <= t.created_at + m.window_days * interval '24 hours';
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- The citizen's row first, then the merchant's (ledger.write's order). A compacted
    -- spend's debit side is a pool, not a citizen: nothing here, the general path refuses.
    UPDATE points_accounts c SET balance = c.balance + p_points
     WHERE c.id = orig.debit_account_id AND c.kind = 'citizen'
       AND c.municipality_id = m.municipality_id
    RETURNING c.balance INTO citizen_balance;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE points_accounts a SET balance = a.balance - p_points
     WHERE a.id = m.account_id AND a.kind = 'merchant'
       AND a.municipality_id = m.municipality_id
    RETURNING a.balance INTO merchant_balance;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'points: the merchant account does not match';
    END IF;
    INSERT INTO points_transfers (municipality_id, kind, status, debit_account_id,
        credit_account_id, amount, idempotency_key, payload_hash, reversal_of,
        debit_balance, credit_balance, created_at)
    VALUES (m.municipality_id, 'refund', 'posted', m.account_id, orig.debit_account_id,
        p_points, p_key, p_hash, orig.id, merchant_balance, citizen_balance, p_now)
    RETURNING id INTO new_id;
    -- Back into the lots the spend took from (net of earlier refunds), latest expiry
    -- first: a refund does not extend the life of points.
    FOR lot IN
        SELECT mv.lot_id, -SUM(mv.delta) AS taken
          FROM points_lot_moves mv JOIN points_lots l ON l.id = mv.lot_id
         WHERE (mv.transfer_id = orig.id OR mv.transfer_id IN
                (SELECT r.id FROM points_transfers r WHERE r.reversal_of = orig.id
                  AND r.id <> new_id))
         GROUP BY mv.lot_id, l.expires_at
         ORDER BY l.expires_at DESC, mv.lot_id DESC
    LOOP
        give := LEAST(lot.taken, left_over);
        IF give > 0 THEN
            UPDATE points_lots SET remaining = remaining + give WHERE id = lot.lot_id;
            INSERT INTO points_lot_moves (lot_id, transfer_id, delta)
            VALUES (lot.lot_id, new_id, give);
            left_over := left_over - give;
        END IF;
        EXIT WHEN left_over = 0;
    END LOOP;
    SELECT COALESCE(SUM(r.amount), 0) INTO reversed
      FROM points_transfers r WHERE r.reversal_of = orig.id;
    IF left_over <> 0 OR reversed > orig.amount THEN
        RAISE EXCEPTION 'points: the refund exceeds the spend' USING ERRCODE = 'P0001';
    END IF;
    o_transfer := new_id;
    o_left := orig.amount - reversed;
    RETURN NEXT;
END
$fn$
"""

# Every function, with the signature DROP FUNCTION needs.
ALL = {
    GRANT_V1_NAME: (GRANT_V1, "integer, integer, text, text, text, timestamptz"),
    SPEND_V1_NAME: (SPEND_V1, "integer, text, bigint, text, text, timestamptz"),
    REFUND_V1_NAME: (REFUND_V1, "integer, bigint, bigint, text, text, timestamptz, integer"),
}


def drop_sql(name: str) -> str:
    """DROP FUNCTION for one of ALL."""
    return f"DROP FUNCTION IF EXISTS {name}({ALL[name][1]})"


def install(transfers: Table) -> None:
    """Create the functions with the tables (Base.metadata.create_all), on PostgreSQL only:
    after points_transfers is created, dropped before it is. PL/pgSQL bodies name tables
    only when they run, so the order of the other tables does not matter."""
    for name, (sql, _signature) in ALL.items():
        event.listen(transfers, "after_create", DDL(sql).execute_if(dialect="postgresql"))
        event.listen(transfers, "before_drop", DDL(drop_sql(name)).execute_if(dialect="postgresql"))
