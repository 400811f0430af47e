"""PostHog's own tests for this slice, as contract tests of the emulator over raw HTTP.

Each test is named after the PostHog test(s) it comes from (class and method in
``PostHog/posthog``), written anew here. Where PostHog's stored versions disagree the
newest is followed and the older behaviour is noted.

Sources read and ported:
- ``posthog/api/test/test_project_secret_api_keys.py``, whole file. The stored copy is an
  older version (10-key cap, ``endpoint:read`` the only allowed scope, bare-list responses,
  partial PUT); current PostHog (``posthog/api/project_secret_api_key.py``: 50 keys,
  ``feature_flag:read`` allowed, paginated list, PUT needs label and scopes) is what these
  tests follow.
- ``posthog/api/test/test_sharing.py``, whole file (118,165 characters). Ported: the API
  tests (``TestSharing``, ``TestSharingConfigurationSerializerValidation``: config reads,
  re-enabling, legacy tokens, refresh and grace, duplicate configs, settings, public
  sharing disallowed) and the parts of ``TestSharingPublishGate`` that hold without access
  control (enabling, and a PATCH of an already enabled share keeping its link). The rest
  renders shared pages or checks access-control and warehouse gates (below).
- The share-password API tests (``TestSharePasswordAPI``), whole class.
- ``ee/clickhouse/views/test/test_clickhouse_groups.py``, whole file: the groups views
  (list, find, create, update and delete property, activity, related actors, property
  values), the group-types views (list, metadata, detail dashboards, default columns,
  delete, reading with a share's ``sharing_access_token``), what HTTP shows of
  ``GroupPropertyDefinitionsTestCase``, and ``TestListGroupsFunction`` /
  ``TestGroupsListAPIContract`` through the list endpoint (its page size is fixed at 100,
  so the ``limit=2`` cases are checked at that boundary).

One module per source area: ``test_project_secret_api_keys``, ``test_sharing``,
``test_groups``, ``test_group_types``; the ``api`` fixture is in ``conftest``.

Not modelled, on purpose (the library never relies on them):
- OpenGraph images and exports (``/shared/<token>.png``, ``ExportedAsset``), the exporter
  and its tokens, ``/shared_dashboard`` and ``/embedded`` rendering, cohort inlining, query
  caches in shared pages: rendering, not API behaviour.
- Activity-log rows of dashboards and insights (asserted through the ORM; the slice has no
  API that reads them), dashboard ``is_shared``, access-method records, ``$groupidentify``
  emitted by the REST writes (a mocked internal call), lazily created CRM notebooks.
- Dashboard restriction levels and collaborators, deleted dashboards, notebook sharing.
- ``cleanup_expired_sharing_configs``: a maintenance command; the emulator treats expired
  configs as dead at once, which is what the assertions after it observe.
- Group usage metrics (``groups_types/:index/metrics``, ``GroupUsageMetricViewSetTestCase``):
  a CRM feature with data-warehouse validation, outside the slice this library automates.
- Group property definitions and their detected types (``PropertyDefinition`` rows): asserted
  through the ORM; the slice has no endpoint that reads them. The writes' HTTP answers are
  ported.
- The group-types cache (``test_list_serves_from_group_types_cache``, the legacy
  ``detail_dashboard_id`` cache entry, the ``*_invalidates_cache`` tests): Django cache
  internals. The emulator has no cache, so every read is fresh, which is what invalidation
  guarantees.
- Access control and warehouse gates (``TestSharingConfigurationReadAccess``,
  ``TestSharedLinkWarehouseExecution``, ``TestSharingPublishGate``'s denials,
  ``TestSaveTimeAccessBlock``, ``TestSharingResourceEditChecks``): RBAC rules, saved
  warehouse queries, notebooks and insight queries, none of which the slice holds.
- Access-control roles (``test_update_metadata_non_admin_cannot_modify_protected_fields``,
  ``test_non_admin_cannot_update_metric``): RBAC, not modelled (like dashboard restriction
  levels). Without access control an organization member may edit, as the emulator does.
- Related actors are computed by PostHog from 90 days of events; the emulator keeps no
  events, so it is seeded with that scan's result (``related``, ``persons``) and checks the
  answer's shape, order and the skipping of groups that do not exist.
- ``update_metadata`` or ``create_detail_dashboard`` naming a type that does not exist is
  an uncaught ``DoesNotExist`` (500) in PostHog; the emulator answers 404
  ``Group type not found`` and applies none of the rows.
"""
