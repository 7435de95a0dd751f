"""What Graph's documentation says about each call the bridge makes, one check per rule, each citing
its page (Graph v1.0 API reference on learn.microsoft.com, or its source in
microsoftgraph/microsoft-graph-docs-contrib: `api-reference/v1.0/api/*.md`, `resources/*.md`).

The sandbox speaks for the documentation, not for the bridge: where a page says Required, it refuses
without it; where the pages are silent or contradict each other, it is lenient and says so here.
The rule list with its status (documented / unconfirmed) is in the README's "Graph sandbox" section.
"""

from __future__ import annotations

from typing import Any

from devtools.graph_sandbox.errors import GraphHttpError, bad_request

Doc = dict[str, Any]

SELF_INITIATED = "#microsoft.graph.learningSelfInitiatedCourse"
ASSIGNMENT = "#microsoft.graph.learningAssignment"

# Pages, as cited below.
RESOURCE_SELF_INITIATED = "resources/learningselfinitiatedcourse"
RESOURCE_ACTIVITY = "resources/learningcourseactivity"
CREATE_ACTIVITY = "api/employeeexperienceuser-post-learningcourseactivities"
UPDATE_ACTIVITY = "api/learningcourseactivity-update"
DELETE_ACTIVITY = "api/learningcourseactivity-delete"
UPDATE_CONTENT = "api/learningprovider-update-learningcontents"
CREATE_USER = "api/user-post-users"
ADVANCED_QUERIES = "graph/aad-advanced-queries"


def require_sync_enabled(provider: Doc) -> None:
    """Create, Update and Delete learningCourseActivity: "A provider can only manage learning course
    activities when isCourseActivitySyncEnabled is set to true"; their error tables answer 400 "This
    provider isn't enabled for the given tenant" (CREATE_ACTIVITY, UPDATE_ACTIVITY, DELETE_ACTIVITY).
    The exact status per method is unconfirmed; the sandbox uses the documented 400 for all three."""
    if not provider.get("isCourseActivitySyncEnabled"):
        raise GraphHttpError(400, "BadRequest", "This provider isn't enabled for the given tenant.")


def check_create_activity(provider_id: str, body: Doc) -> None:
    """The rules of POST .../learningCourseActivities that the schema alone does not carry."""
    # CREATE_ACTIVITY: "learnerUserId, learningContentId and status are required" for both types.
    missing = [k for k in ("learnerUserId", "learningContentId", "status") if body.get(k) is None]
    if missing:
        raise bad_request(f"Required property {missing[0]!r} is missing.")
    # RESOURCE_ACTIVITY lists learningProviderId as Required, the self-initiated example leaves it out:
    # contradictory, so both are accepted. A value other than the provider in the path is refused: the
    # pages do not say which one Graph would keep, and writing into another provider is never right.
    given = body.get("learningProviderId")
    if given is not None and given != provider_id:
        raise bad_request("learningProviderId must be the registration id of the provider in the URL.")
    check_self_initiated_status(body)


def check_update_activity(record: Doc, body: Doc) -> None:
    """PATCH .../learningCourseActivities/{id} (UPDATE_ACTIVITY)."""
    # UPDATE_ACTIVITY: "@odata.type ... required": it picks the type, and cannot change it.
    if body.get("@odata.type") != record["@odata.type"]:
        raise bad_request("@odata.type must be given and equal the record's type.")
    if record["@odata.type"] != SELF_INITIATED:
        return  # assignments: not written by the bridge; the schema check is all the sandbox does
    # UPDATE_ACTIVITY, the table for learningSelfInitiatedCourse: completedDateTime,
    # completionPercentage, startedDateTime and status can be updated; status is marked Required.
    changeable = {"completedDateTime", "completionPercentage", "startedDateTime", "status"}
    fixed = sorted(k for k in body if k not in changeable and not k.startswith("@odata."))
    if fixed:
        raise bad_request(f"Property {fixed[0]!r} cannot be updated on a learningSelfInitiatedCourse.")
    if body.get("status") is None:
        raise bad_request("Required property 'status' is missing.")
    check_self_initiated_status(body)
    # UPDATE_ACTIVITY's example clears a field with "completedDateTime": null; any of the changeable
    # date and percentage fields may be null. Moving a record backwards (completed -> inProgress) is
    # not documented either way: allowed (unconfirmed).


def check_self_initiated_status(body: Doc) -> None:
    """RESOURCE_SELF_INITIATED and UPDATE_ACTIVITY: a self-initiated course's status is inProgress or
    completed. CREATE_ACTIVITY's shared table also lists notStarted (contradictory): refused, since
    the resource page is the type's own definition."""
    if body.get("@odata.type") == SELF_INITIATED and body.get("status") not in ("inProgress", "completed"):
        raise bad_request(
            f"status {body.get('status')!r} is not valid for a learningSelfInitiatedCourse "
            "(inProgress or completed)."
        )


def check_percentage(body: Doc) -> None:
    """RESOURCE_ACTIVITY: completionPercentage is 0 to 100 (null clears it)."""
    percentage = body.get("completionPercentage")
    if percentage is not None and not (
        isinstance(percentage, int) and not isinstance(percentage, bool) and 0 <= percentage <= 100
    ):
        raise bad_request("completionPercentage must be a whole number between 0 and 100.")


def check_new_content(body: Doc) -> None:
    """UPDATE_CONTENT: PATCH learningContents(externalId='...') creates or updates; the resource table
    marks externalId (the key), title, contentWebUrl and languageTag Required on create. The examples
    carry no @odata.type, so none is required (a given one must be learningContent)."""
    missing = [k for k in ("title", "contentWebUrl", "languageTag") if not body.get(k)]
    if missing:
        raise bad_request(f"Required property {missing[0]!r} is missing.")


#: CREATE_USER: "the following properties are required": accountEnabled, displayName, mailNickname,
#: userPrincipalName, passwordProfile.
USER_REQUIRED = ("accountEnabled", "displayName", "mailNickname", "userPrincipalName", "passwordProfile")

#: ADVANCED_QUERIES: filters on these need ConsistencyLevel: eventual and $count=true; mail,
#: userPrincipalName, otherMails/any and employeeId eq work without (the $filter support tables).
_ADVANCED_PREFIXES = ("onPremisesSamAccountName", "extension_")


def check_user_query(field: str, consistency_level: str | None, count: str | None) -> None:
    advanced = consistency_level is not None and consistency_level.lower() == "eventual"
    # ADVANCED_QUERIES: "$count ... requires the ConsistencyLevel header set to eventual" on
    # directory objects.
    if count is not None and not advanced:
        raise GraphHttpError(
            400,
            "Request_BadRequest",
            "$count is not currently supported without the ConsistencyLevel header set to eventual.",
        )
    if field.startswith(_ADVANCED_PREFIXES) and not (advanced and count == "true"):
        raise GraphHttpError(
            400,
            "Request_UnsupportedQuery",
            f"Filtering on {field} is an advanced query: it needs ConsistencyLevel: eventual and "
            "$count=true.",
        )
