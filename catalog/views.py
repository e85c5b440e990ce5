"""Browsing the catalog: the list with filters, facets and search, and one entity's page."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET, require_http_methods
from django_tables2 import RequestConfig

from access.audit import Actor
from access.models import AuditEvent
from access.policy import is_portal_admin, viewer_for
from access.selectors import (
    EntityAccess,
    entity_access,
    open_requests_by_role,
)
from access.words import source_words
from catalog.annotations import access_annotations
from catalog.filters import EntityFilter, owner_key
from catalog.forms import LocationForm
from catalog.graph import (
    Graph,
    GraphItem,
    Related,
    graph_layout,
    noun_after,
    relation_order,
    relation_words,
)
from catalog.models import Entity, Location
from catalog.refs import parse_entity_ref
from catalog.selectors import (
    FACET_COUNT_CAP,
    EntityLabel,
    FacetValue,
    RelatedRefs,
    catalog_facets,
    catalog_kinds,
    entity_by_ref,
    entity_facets,
    entity_labels,
    entity_relations,
)
from catalog.services import location_import
from catalog.tables import EntityTable, owner_label
from catalog.templatetags.people import prime_people
from portal.durations import duration_words

PAGE_SIZE = 25
LIST_COLUMNS = ("ref", "kind", "namespace", "name", "title", "description", "spec_type",
                "lifecycle", "owner_ref", "restricted")  # fmt: skip
FACET_LABELS = {
    "type": "Type",
    "lifecycle": "Lifecycle",
    "owner": "Owner",
    "namespace": "Namespace",
    "tag": "Tag",
}
# The list opens on Components, as Backstage's does; `?kind=all` lists every kind.
DEFAULT_KIND = "Component"
ALL_KINDS = "all"
# The kind selector's order: the kinds Backstage knows, then any other the catalog holds.
KNOWN_KINDS = ("Component", "API", "Resource", "System", "Domain", "Group", "User", "Location")


class CountedPaginator(Paginator):
    """A paginator told how many entities there are (the facets counted them already)."""

    def __init__(self, object_list: Any, per_page: int, *, count: int, **kwargs: Any) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self._known_count = count

    @cached_property
    def count(self) -> int:
        return self._known_count


def ref_url(ref: str) -> str:
    return parse_entity_ref(ref).url


# Facets with more values than the list shows: a value past the most common may be typed.
TYPED_FACETS = ("type", "owner", "lifecycle", "tag", "namespace")


def _facet_href(request: HttpRequest, params: QueryDict) -> str:
    return f"{request.path}?{params.urlencode()}" if params else request.path


def _facet_labels(name: str, values: list[FacetValue]) -> dict[str, tuple[str, str]]:
    """For each value, how its link reads and the value its URL carries. Owners read as the
    table shows them (`team-payments`) and travel so, unless two would read alike (a group
    and a user of one name): those keep their whole refs."""
    if name != "owner":
        return {facet.value: (facet.value, facet.value) for facet in values}
    alike = Counter(owner_label(facet.value) for facet in values)
    labels = {}
    for facet in values:
        short = owner_label(facet.value)
        if alike[short] > 1:
            labels[facet.value] = (facet.value, facet.value)
        else:
            # `team-payments` names the same owner as its ref; a user must keep its `user:`.
            carried = short if owner_key(short) == facet.value.lower() else facet.value
            labels[facet.value] = (short, carried)
    return labels


def _facet_links(
    request: HttpRequest, facets: dict[str, Any], *, capped: bool = False
) -> list[dict[str, Any]]:
    groups = []
    for name, values in facets.items():
        if name not in FACET_LABELS:
            continue  # the kind is chosen with the selector beside the search box
        chosen = request.GET.get(name, "")
        # An owner may be typed as `spec.owner` names it (`team-a`); the facet values are refs.
        compared = (owner_key(chosen) or chosen.lower()) if name == "owner" else chosen.lower()
        labels = _facet_labels(name, values)
        links = []
        for facet in values:
            params = _filled(request)
            params.pop("page", None)
            active = compared == facet.value.lower()
            label, carried = labels[facet.value]
            if active:
                params.pop(name)
            else:
                params[name] = carried
            links.append(
                {
                    "value": label,
                    "count": f"{facet.count}+" if capped else facet.count,
                    "active": active,
                    "href": _facet_href(request, params),
                }
            )
        if chosen and not any(link["active"] for link in links):
            # Chosen, but not among the most common values: still shown, and removable.
            params = _filled(request)
            params.pop("page", None)
            params.pop(name)
            href = _facet_href(request, params)
            links.insert(0, {"value": chosen, "count": "", "active": True, "href": href})
        if links or name in TYPED_FACETS:
            groups.append(
                {
                    "name": name,
                    "label": FACET_LABELS[name],
                    "links": links,
                    "typed": name in TYPED_FACETS,
                    "chosen": chosen,
                }
            )
    return groups


def _kind_options(chosen: str | None, kinds: list[FacetValue]) -> list[dict[str, Any]]:
    """The kind selector: every kind, then Backstage's kinds the catalog holds (Component
    always), then the others it holds, and the chosen one even when it holds none of it."""
    held = {facet.value.lower(): facet.value for facet in kinds}
    names = [kind for kind in KNOWN_KINDS if kind.lower() in held or kind == DEFAULT_KIND]
    known = {kind.lower() for kind in KNOWN_KINDS}
    names += sorted((value for key, value in held.items() if key not in known), key=str.lower)
    if chosen and chosen.lower() not in {name.lower() for name in names}:
        names.append(chosen)
    options = [{"value": ALL_KINDS, "label": "All kinds", "selected": chosen is None}]
    for name in names:
        selected = chosen is not None and name.lower() == chosen.lower()
        # The default goes without saying: the form leaves it out of the address it shares.
        value = "" if name == DEFAULT_KIND else name
        options.append({"value": value, "label": name, "selected": selected})
    return options


def _kind_named(chosen: str, kinds: list[FacetValue]) -> str:
    """The kind as the catalog spells it (`API` for `?kind=api`)."""
    for name in (*KNOWN_KINDS, *(facet.value for facet in kinds)):
        if name.lower() == chosen.lower():
            return name
    return chosen


def result_count(total: int, *, kind: str | None, capped: bool = False) -> str:
    """ "12 components", "1 API", "2,000 or more entities"."""
    if kind is None:
        noun = "entity" if total == 1 and not capped else "entities"
    else:
        word = kind if kind.isupper() else kind.lower()  # API stays API
        noun = word if total == 1 and not capped else f"{word}s"
    return f"{total:,} or more {noun}" if capped else f"{total:,} {noun}"


def _filled(request: HttpRequest) -> QueryDict:
    """The query without the empty fields a submitted form adds (`owner=&type=`)."""
    params = request.GET.copy()
    for key in [key for key, values in params.lists() if not any(values)]:
        params.pop(key)
    return params


def _without_empty(request: HttpRequest) -> str | None:
    """The URL worth sharing, without empty fields; None when it has none."""
    params = _filled(request)
    if len(params) == len(request.GET):
        return None
    return f"{request.path}?{params.urlencode()}" if params else request.path


# A browser drops these anywhere in a URL before it reads the scheme ("java\tscript:" runs).
_IGNORED_IN_URLS = str.maketrans("", "", "\t\n\r")
CLICKABLE_SCHEMES = ("http:", "https:", "mailto:")


def link_is_clickable(url: object) -> bool:
    """Whether a descriptor's link may be an `<a href>`: only http, https and mailto. Anything
    else (`javascript:`, `data:`, …) is valid for Backstage and shown as text, never followed."""
    if not isinstance(url, str):
        return False
    # Leading C0 controls and spaces are stripped by browsers too.
    text = url.translate(_IGNORED_IN_URLS).lstrip("".join(map(chr, range(33)))).lower()
    return text.startswith(CLICKABLE_SCHEMES)


@require_GET
def entity_list(request: HttpRequest) -> HttpResponse:
    clean_url = _without_empty(request)
    if clean_url and not request.htmx:  # type: ignore[attr-defined]
        return redirect(clean_url)  # a form sent without JavaScript: the address to share
    # Who is looking is gathered once: the filters, the counts and the table all use it.
    viewer = viewer_for(request.user)  # type: ignore[arg-type]
    kinds = catalog_kinds()
    asked_kind = request.GET.get("kind", "").strip() or DEFAULT_KIND
    kind = None if asked_kind.lower() == ALL_KINDS else _kind_named(asked_kind, kinds)
    data = request.GET.copy()
    data.pop("kind", None)
    if kind is not None:
        data["kind"] = kind
    filterset = EntityFilter(data, queryset=Entity.objects.all(), request=request, viewer=viewer)
    entities = filterset.qs
    cleaned = filterset.form.cleaned_data if filterset.is_valid() else {}
    chosen = [
        name for name, value in cleaned.items() if name != "kind" and value not in (None, "", False)
    ]
    filtered = not filterset.is_valid() or bool(chosen)
    # The facets count what the table lists, details where this viewer may see them; the
    # counts of one kind, or of all, were made when the catalog last changed.
    if filtered:
        details_q = viewer.may_see_restricted_q()
        facets = entity_facets(entities=entities, details_q=details_q, cap=FACET_COUNT_CAP)
    else:
        opened = viewer.restricted_opened_q()
        facets = catalog_facets(kinds=None if kind is None else [kind], restricted_opened_q=opened)
    # The list shows a few columns: the descriptor and the search document stay in the database.
    listed = entities.only(*LIST_COLUMNS).prefetch_related("required_role_rows")
    table = EntityTable(
        listed,
        viewer=viewer,
        open_requests=open_requests_by_role(user=request.user),  # type: ignore[arg-type]
        with_kind=kind is None,
    )
    table.boost_results = True  # its sorting and pages replace the results alone
    table.counted_above = True
    paginate = {"per_page": PAGE_SIZE, "paginator_class": CountedPaginator, "count": facets.total}
    RequestConfig(request, paginate=paginate).configure(table)
    # Clearing keeps the kind asked for: it is the list's subject, not one of its filters.
    clear_url = request.path + (
        f"?{urlencode({'kind': asked_kind})}" if "kind" in request.GET else ""
    )
    context = {
        "filter": filterset,
        "table": table,
        "facets": _facet_links(request, facets.groups, capped=facets.capped),
        "typed_facets": TYPED_FACETS,
        "kind_options": _kind_options(kind, kinds),
        "count": result_count(facets.total, kind=kind, capped=facets.capped),
        "filtered": filtered,
        "facets_chosen": len([name for name in chosen if name in FACET_LABELS]),
        "clear_url": clear_url,
        "boost_results": True,
        "can_register": viewer.is_admin,
    }
    htmx = request.htmx  # type: ignore[attr-defined]
    # A history restore (Back, with htmx's cache missed) needs the whole page, not the results.
    partial = htmx and not htmx.boosted and not htmx.history_restore_request
    template = "catalog/entity_list.html" + ("#results" if partial else "")
    response = render(request, template, context)
    if clean_url:
        response["HX-Push-Url"] = clean_url  # the address bar gets the URL worth sharing
    patch_vary_headers(response, ["HX-Request"])
    return response


# The entity page's tabs, each a link (`?tab=`) that works without JavaScript.
TABS = {"overview": "Overview", "relations": "Relations", "access": "Access",
        "definition": "Definition"}  # fmt: skip
# Each relation type lists this many targets by title; the rest are counted.
RELATIONS_LISTED = 50


def request_access_url(*, entity_ref: str, role: str, extend: int | None = None) -> str:
    """The request form for this role of this entity (`extend`: filled in as that grant)."""
    query: dict[str, object] = {"entity": entity_ref, "role": role}
    if extend is not None:
        query["extend"] = extend
    return reverse("access:request_new") + "?" + urlencode(query)


def _linked(label: EntityLabel) -> dict[str, str]:
    """An entity a page names: its title, kind and page; a ref no entity answers as text."""
    return {"title": label.title, "ref": label.ref, "url": label.url, "noun": label.noun}


def _role_rows(
    entity: Entity, access: EntityAccess, labels: dict[str, EntityLabel]
) -> list[dict[str, Any]]:
    """Each required role with the links the page offers for it."""
    rows = []
    for role in access.roles:
        grant, held = role.grant, role.held
        rows.append({
            "role": role,
            "name": role.name,
            "owners": [_linked(labels[owner]) for owner in role.owners if owner in labels],
            "request_url": request_access_url(entity_ref=entity.ref, role=role.name),
            "extend_url": request_access_url(
                entity_ref=grant.entity_ref if grant else entity.ref, role=role.name,
                extend=grant.pk if grant else None,
            ) if role.extendable else "",
            "source": source_words(held.source, "your") if held else "",
            "more_holders": max(0, role.holders_total - len(role.holders or [])),
        })  # fmt: skip
    return rows


def _relations(
    entity: Entity, related: dict[str, RelatedRefs], labels: dict[str, EntityLabel]
) -> tuple[list[dict[str, Any]], Graph | None]:
    """The entity's relations by type, in words and titles, and the graph of them."""
    groups: list[dict[str, Any]] = []
    for relation_type in relation_order(related):
        found = related[relation_type]
        items: list[dict[str, str]] = []
        for ref in found.target_refs:
            item = _linked(labels[ref])
            item["noun_after"] = noun_after(relation_type, item["noun"])
            items.append(item)
        groups.append({
            "type": relation_type, "words": relation_words(relation_type), "items": items,
            "more": found.total - len(items),
        })  # fmt: skip
    itself = _linked(labels[entity.ref])
    center = GraphItem(title=itself["title"], kind=itself["noun"], ref=entity.ref)
    graph = graph_layout(
        center=center,
        related=[
            Related(group["type"], [GraphItem(item["title"], item["noun"], item["url"],
                                              item["ref"]) for item in group["items"]],
                    related[group["type"]].total)
            for group in groups
        ],
    )  # fmt: skip
    return groups, graph


@require_GET
def entity_detail(request: HttpRequest, namespace: str, kind: str, name: str) -> HttpResponse:
    """One entity, in tabs: overview, relations (in words and as a graph), access (each
    required role as it stands for the person looking) and, for an API, its definition."""
    entity = entity_by_ref(ref=f"{kind}:{namespace}/{name}")
    if entity is None:
        raise Http404(f"No entity {kind}:{namespace}/{name} in the catalog")
    person = request.user
    viewer = viewer_for(person)  # type: ignore[arg-type]
    required = [row.role_name for row in entity.required_role_rows.all()]
    may_see = viewer.may_see_restricted(
        restricted=entity.restricted, required_roles=required, owner_ref=entity.owner_ref
    )
    is_api = entity.kind.lower() == "api"
    tab = request.GET.get("tab", "")
    tab = tab if tab in TABS and (tab != "definition" or is_api) else "overview"
    descriptor = entity.descriptor
    spec = descriptor.get("spec") or {}
    annotations = access_annotations(descriptor)
    access = entity_access(viewer=viewer, user=person, entity=entity)  # type: ignore[arg-type]
    # Who depends on what is a detail too; ownership is for everyone.
    related = entity_relations(
        entity=entity, viewer=viewer, limit=RELATIONS_LISTED,
        types=None if may_see else ["ownedBy"],
    )  # fmt: skip
    # Every entity the page names, by title, in one lookup.
    named = {entity.ref, entity.owner_ref, entity.system_ref if may_see else ""}
    named |= {ref for group in related.values() for ref in group.target_refs}
    named |= {owner for role in access.roles for owner in role.owners}
    labels = entity_labels(refs=named)
    relation_groups, graph = _relations(entity, related, labels)
    prime_people(request, [m.user.email for role in access.roles for m in role.holders or []]
                 + [r.requester.email for r in access.waiting or []])  # fmt: skip
    links = [
        {"url": link.get("url"), "title": link.get("title") or link.get("url"),
         "clickable": link_is_clickable(link.get("url"))}
        for link in descriptor["metadata"].get("links") or [] if isinstance(link, dict)
    ]  # fmt: skip
    by_type = {group["type"]: group for group in relation_groups}
    context = {
        "entity": entity,
        # A group's or a person's display name when it has no title, as pages linking to it say.
        "title": labels[entity.ref].title,
        "tab": tab,
        "tabs": [
            {
                "name": name_,
                "label": label,
                "current": name_ == tab,
                "url": request.path if name_ == "overview" else f"{request.path}?tab={name_}",
            }
            for name_, label in TABS.items()
            if name_ != "definition" or is_api
        ],  # fmt: skip
        "links": links,
        "metadata": descriptor["metadata"],
        "spec": spec,
        "may_see": may_see,
        "is_admin": viewer.is_admin,
        "access": access,
        "roles": _role_rows(entity, access, labels),
        "annotations": annotations,
        "relation_groups": relation_groups,
        "members": by_type.get("hasMember"),
        "owned": by_type.get("ownerOf"),
        "groups": by_type.get("memberOf"),
        "graph": graph,
        "owner": _linked(labels[entity.owner_ref]) if entity.owner_ref in labels else None,
        "system": _linked(labels[entity.system_ref]) if entity.system_ref in labels else None,
        "definition": spec.get("definition") if is_api else None,
        "max_duration": duration_words(d) if (d := annotations.max_access_duration) else "",
        "gateway_routes": _explainable_routes(entity) if may_see else [],
    }
    return render(request, "catalog/entity_detail.html", context)


def _explainable_routes(entity: Entity) -> list[dict[str, str]]:
    """The gateway routes the entity holds, each with a link to `/authz/explain` filled in
    with a request it takes (a prefix's own path, the first method named)."""
    routes = []
    for route in entity.gateway_routes.all():
        query = urlencode({
            "method": route.methods.split(",")[0] if route.methods else "GET",
            "host": route.host,
            "path": route.path.removesuffix("*"),
        })  # fmt: skip
        routes.append({"route": str(route), "audience": route.audience,
                       "explain_url": f"{reverse('authz-explain')}?{query}"})  # fmt: skip
    return routes


@require_http_methods(["GET", "POST"])
def location_register_page(request: HttpRequest) -> HttpResponse:
    """Portal admins register a descriptor URL, after a preview of what it holds."""
    if not is_portal_admin(request.user):  # type: ignore[arg-type]
        raise PermissionDenied("registering locations is for portal admins")
    form = LocationForm(request.POST or None)
    preview = None
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["target"]
        existed = Location.objects.filter(target=target).exists()
        register = request.POST.get("action") == "register" and not existed
        # A registered location is previewed under the kinds it has: this page registers,
        # `import_catalog --allow-kinds` changes them.
        allow_kinds = None if existed else form.allow_kinds
        allow_routes = None if existed else form.cleaned_data["declares_routes"]
        report = location_import(target=target, dry_run=not register, with_entities=True,
                                 allow_kinds=allow_kinds, allow_routes=allow_routes)  # fmt: skip
        entities = report.entities
        if register:
            who = request.user  # signed in: the page is for people who are
            Actor.of_request(request, who, AuditEvent.Via.WEB).record(  # type: ignore[arg-type]
                "catalog.location_registered", target,
                entities=len(entities), problems=len(report.problems),
                **report.allow_kinds_detail,
            )  # fmt: skip
            messages.success(
                request, f"Registered {target}: {len(entities)} entities, "
                f"{len(report.problems)} problems."
            )  # fmt: skip
            return redirect("catalog:location_register")
        preview = {
            "entities": entities,
            "problems": report.problems,
            "exists": existed,
            "allow_kinds": report.location.allow_kinds,
            "allows_routes": report.location.allows_routes,
        }
    locations = Location.objects.order_by("target")
    context = {"form": form, "preview": preview, "locations": locations}
    return render(request, "catalog/location_register.html", context)
