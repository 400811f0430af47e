"""Pin block references in deployment parameters to block-document ids.

`prefect.yaml` references blocks by slug (`{"$ref": {"block_document_slug":
"posthog-credentials/posthog"}}`), which is portable between servers and resolved when a
run starts. The UI's block pickers show only id references, so after `prefect deploy` run
``python -m prefect_posthog.deployments.pin_blocks`` to rewrite each slug reference of
this package's deployments as ``{"$ref": {"block_document_id": ...}}``. A slug naming no
saved block fails here, naming it, instead of at the first scheduled run.
"""

from __future__ import annotations

import sys
from typing import Any

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import DeploymentUpdate
from prefect.exceptions import ObjectNotFound

FLOW_PREFIX = "posthog-"


def _pin(value: Any, client: SyncPrefectClient, missing: list[str]) -> Any:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, dict) and isinstance(ref.get("block_document_slug"), str):
            slug = ref["block_document_slug"]
            type_slug, _, name = slug.partition("/")
            try:
                document = client.read_block_document_by_name(name, type_slug,
                                                              include_secrets=False)
            except ObjectNotFound:
                missing.append(slug)
                return value
            return {"$ref": {"block_document_id": str(document.id)}}
        return {k: _pin(v, client, missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_pin(v, client, missing) for v in value]
    return value


def pin_block_references(flow_prefix: str = FLOW_PREFIX) -> dict[str, dict[str, Any]]:
    """Rewrite slug references as id references in every deployment of matching flows.

    Args:
        flow_prefix: Only deployments of flows whose name starts with this are touched.

    Returns:
        The new default parameters of each deployment changed, by `flow/deployment` name.

    Raises:
        LookupError: A reference names a block that is not saved (nothing is changed).

    Example:
        ```python
        from prefect_posthog.deployments.pin_blocks import pin_block_references

        pin_block_references()  # after `prefect deploy --all`
        ```
    """
    with get_client(sync_client=True) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        planned, missing = {}, []
        for deployment in client.read_deployments():
            flow_name = flows.get(deployment.flow_id, "")
            if not flow_name.startswith(flow_prefix):
                continue
            pinned = _pin(deployment.parameters, client, missing)
            if pinned != deployment.parameters:
                planned[f"{flow_name}/{deployment.name}"] = (deployment.id, pinned)
        if missing:
            raise LookupError("no saved block for " + ", ".join(sorted(set(missing))) +
                              "; create it (UI: Blocks) and run this again. Nothing changed")
        for deployment_id, parameters in planned.values():
            client.update_deployment(deployment_id, DeploymentUpdate(parameters=parameters))
    return {name: parameters for name, (_, parameters) in planned.items()}


def main() -> int:
    try:
        changed = pin_block_references()
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 1
    for name in changed:
        print(f"pinned block references of {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
