"""Alert rules over HTTP: list, create, replace, delete, versions, and a dry-run validation.

Bodies are rule documents as JSON (see docs/rules.md). An invalid rule is refused with 400
``application/problem+json`` whose ``code`` is ``rule_invalid`` and whose ``path`` names the bad field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Response

from citydata.api.deps import Allowed, PlatformDep
from citydata.auth import Principal

if TYPE_CHECKING:
    from citydata.rules import RulesService

router = APIRouter(prefix="/api/v1/rules", tags=["rules"])
RuleBody = Annotated[dict[str, Any], Body(description="A rule document (see docs/rules.md).")]


def _rules(platform: Any) -> RulesService:
    return platform.rules  # type: ignore[no-any-return]


@router.get("", summary="List rules")
async def list_rules(platform: PlatformDep,
                     caller: Annotated[Principal, Allowed("rules.read")]) -> dict[str, list[dict[str, Any]]]:
    return {"items": await _rules(platform).list()}


@router.post("", summary="Create a rule", status_code=201)
async def create_rule(body: RuleBody, platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("rules.write")]) -> dict[str, Any]:
    return await _rules(platform).create(body, by=caller.subject)


@router.post("/validate", summary="Validate a rule without saving it (dry run)")
async def validate_rule(body: RuleBody, platform: PlatformDep,
                        caller: Annotated[Principal, Allowed("rules.read")]) -> dict[str, Any]:
    rule = await _rules(platform).validate(body)
    return {"valid": True, "id": rule.id, "group_by": rule.group_by,
            "condition_kinds": sorted({leaf.kind for leaf in rule.condition.leaves()}),
            "placeholders": sorted(leaf.name for leaf in rule.condition.leaves() if leaf.name)}


@router.get("/{rule_id}", summary="One rule (its current version)")
async def get_rule(rule_id: str, platform: PlatformDep,
                   caller: Annotated[Principal, Allowed("rules.read")]) -> dict[str, Any]:
    return await _rules(platform).get(rule_id)


@router.put("/{rule_id}", summary="Create or replace a rule (a new version when it changed)")
async def replace_rule(rule_id: str, body: RuleBody, response: Response, platform: PlatformDep,
                       caller: Annotated[Principal, Allowed("rules.write")]) -> dict[str, Any]:
    row, outcome = await _rules(platform).replace(rule_id, body, by=caller.subject)
    if outcome == "created":
        response.status_code = 201
    return row


@router.delete("/{rule_id}", summary="Delete a rule (its versions are kept)")
async def delete_rule(rule_id: str, platform: PlatformDep,
                      caller: Annotated[Principal, Allowed("rules.write")]) -> dict[str, Any]:
    version = await _rules(platform).delete(rule_id, by=caller.subject)
    return {"id": rule_id, "deleted": True, "version": version}


@router.get("/{rule_id}/versions", summary="Every version of a rule")
async def rule_versions(rule_id: str, platform: PlatformDep,
                        caller: Annotated[Principal, Allowed("rules.read")]) -> dict[str, list[dict[str, Any]]]:
    return {"items": await _rules(platform).versions(rule_id)}
