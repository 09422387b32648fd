"""One incident's life through the client openapi-python-client generated from
openapi/openapi.json: the desk records nothing by hand, every call is a generated function and
every answer a generated class. Run by .ci/client with the server's address and admin password."""

import sys

from incident_desk_client import AuthenticatedClient, Client
from incident_desk_client.api.auth import issue_token
from incident_desk_client.api.customers import create_customer
from incident_desk_client.api.incidents import (
    accept_incident,
    close_incident,
    confirm_resolution,
    create_incident,
    get_incident,
    get_incident_history,
    list_incidents,
    resolve_incident,
)
from incident_desk_client.api.reference_data import get_procedure
from incident_desk_client.api.users import create_user
from incident_desk_client.models import (
    AcceptRequest,
    CauseCode,
    CloseRequest,
    ClosureCode,
    ConfirmRequest,
    CreateCustomerRequest,
    CreateIncidentRequest,
    CreateUserRequest,
    IncidentResponse,
    PageIncidentResponse,
    Procedure,
    ResolveRequest,
    Role,
    SubcauseCode,
    TokenRequest,
)

BASE, ADMIN_PASSWORD = sys.argv[1], sys.argv[2]


def expect(response, status, kind):
    """The parsed answer, when the status and the generated class are the expected ones."""
    if response.status_code != status or not isinstance(response.parsed, kind):
        raise SystemExit(
            f"expected {status} {kind.__name__}, got {response.status_code}: {response.content!r}"
        )
    return response.parsed


def sign_in(username, password):
    answer = issue_token.sync_detailed(
        client=Client(base_url=BASE),
        body=TokenRequest(username=username, password=password),
    )
    if answer.status_code != 200:
        raise SystemExit(f"sign-in of {username} failed: {answer.content!r}")
    return AuthenticatedClient(base_url=BASE, token=answer.parsed.access_token)


admin = sign_in("admin", ADMIN_PASSWORD)
customer = expect(
    create_customer.sync_detailed(
        client=admin, body=CreateCustomerRequest(code="SH-CLINIC", name="上海示例门诊部")
    ),
    201,
    object,
)
passwords = {"zhou.desk": "服务台 早班 交接 2026", "liu.portal": "门诊部 报修 账号 2026"}
expect(
    create_user.sync_detailed(
        client=admin,
        body=CreateUserRequest(
            username="zhou.desk",
            password=passwords["zhou.desk"],
            display_name="周敏",
            roles=[Role.SERVICE_DESK],
        ),
    ),
    201,
    object,
)
expect(
    create_user.sync_detailed(
        client=admin,
        body=CreateUserRequest(
            username="liu.portal",
            password=passwords["liu.portal"],
            display_name="刘洋",
            roles=[Role.CUSTOMER],
            customer_id=customer.id,
        ),
    ),
    201,
    object,
)
desk = sign_in("zhou.desk", passwords["zhou.desk"])
portal = sign_in("liu.portal", passwords["liu.portal"])

procedure = expect(get_procedure.sync_detailed(client=portal), 200, Procedure)
assert any(a.action == "confirm" for a in procedure.actions), "the procedure lists confirm"

# The customer reports; the desk takes, resolves; the customer confirms; the desk closes.
incident = expect(
    create_incident.sync_detailed(
        client=portal,
        body=CreateIncidentRequest(
            title="挂号系统打印凭条乱码", subcategory="module_input_blocked"
        ),
    ),
    201,
    IncidentResponse,
)
assert incident.status == "new" and "accept" not in incident.allowed_actions
expect(
    accept_incident.sync_detailed(incident.id, client=desk, body=AcceptRequest()),
    200,
    IncidentResponse,
)
resolved = expect(
    resolve_incident.sync_detailed(
        incident.id,
        client=desk,
        body=ResolveRequest(
            solution="更换打印机驱动并重设编码为 GB18030",
            cause=CauseCode.SITE_ENVIRONMENT,
            subcause=SubcauseCode.SITE_HARDWARE_NETWORK,
        ),
    ),
    200,
    IncidentResponse,
)
assert "confirm" in resolved.allowed_actions
expect(
    confirm_resolution.sync_detailed(incident.id, client=portal, body=ConfirmRequest()),
    200,
    IncidentResponse,
)
closed = expect(
    close_incident.sync_detailed(
        incident.id,
        client=desk,
        body=CloseRequest(closure_code=ClosureCode.RESOLVED),
        if_match=f'"{get_incident.sync(incident.id, client=desk).version}"',
    ),
    200,
    IncidentResponse,
)
assert closed.status == "closed" and closed.allowed_actions == []

history = get_incident_history.sync_detailed(incident.id, client=portal)
if history.status_code != 200:
    raise SystemExit(f"history: {history.status_code} {history.content!r}")
actions = [entry.action for entry in history.parsed]
for step in ["created", "accept", "resolve", "confirm", "close"]:
    assert step in actions, f"{step} missing from the history: {actions}"

# A list page's items are the same class as one incident.
page = expect(list_incidents.sync_detailed(client=desk), 200, PageIncidentResponse)
assert page.items and all(isinstance(item, IncidentResponse) for item in page.items)
assert page.next_cursor is None

print(f"generated client: incident {incident.id} recorded, worked, confirmed and closed; "
      f"history {actions}")
