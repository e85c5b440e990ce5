// Reads Atrium's catalog with Backstage's own client and prints what it got as JSON.
// Usage: node read_catalog.mjs <portal base URL> <bearer token>
import { CatalogClient } from '@backstage/catalog-client';

const [base, token] = process.argv.slice(2);
const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${base}/api/catalog` },
  fetchApi: {
    fetch: (input, init = {}) =>
      fetch(input, {
        ...init,
        headers: { ...(init.headers ?? {}), Authorization: `Bearer ${token}` },
      }),
  },
});

const names = entities => entities.map(entity => entity?.metadata?.name ?? null);

const experimental = await client.getEntities({
  filter: [{ kind: 'Component', 'spec.lifecycle': 'experimental' }],
  fields: ['metadata.name', 'kind'],
});
const payments = await client.getEntityByRef('component:default/payments-api');
const missing = await client.getEntityByRef('component:default/nope');
const first = await client.queryEntities({
  filter: { kind: 'component' },
  limit: 4,
  orderFields: { field: 'metadata.name', order: 'asc' },
});
const second = await client.queryEntities({ cursor: first.pageInfo.nextCursor, limit: 4 });
const byRefs = await client.getEntitiesByRefs({
  entityRefs: ['api:default/events', 'component:default/nope', 'group:default/team-data'],
});
const facets = await client.getEntityFacets({
  facets: ['kind'],
  filter: { 'spec.owner': 'team-payments' },
});
const search = await client.queryEntities({ fullTextFilter: { term: 'pay' }, limit: 50 });

// Backstage's newer features: offsets, predicate queries (POST), full-text fields, any order.
const offsetPage = await client.queryEntities({
  filter: { kind: 'component' },
  limit: 2,
  offset: 2,
  orderFields: { field: 'metadata.name', order: 'asc' },
});
const predicate = await client.queryEntities({
  query: { $all: [{ kind: 'component' }, { $not: { 'spec.lifecycle': 'production' } }] },
  filter: { 'spec.type': ['service', 'website'] },
  orderFields: { field: 'metadata.name', order: 'desc' },
  limit: 1,
});
const predicateNext = await client.queryEntities({ cursor: predicate.pageInfo.nextCursor });
const predicateFacets = await client.getEntityFacets({
  facets: ['kind'],
  query: { 'spec.owner': { $in: ['team-payments', 'team-data'] } },
});
const filteredRefs = await client.getEntitiesByRefs({
  entityRefs: ['api:default/events', 'component:default/payments-api', 'group:default/team-data'],
  filter: { kind: 'api' },
});
const ownerSearch = await client.queryEntities({
  fullTextFilter: { term: 'data', fields: ['spec.owner'] },
  filter: { kind: 'resource' },
});
const byDisplayName = await client.queryEntities({
  filter: [{ kind: 'user' }, { kind: 'group' }],
  orderFields: { field: 'spec.profile.displayName', order: 'asc' },
  limit: 4,
});
const location = await client.getLocationByEntity('component:default/payments-api');
const ancestry = await client.getEntityAncestors({ entityRef: 'api:default/events' });

// Errors come back as Backstage's, so the client names them.
const failure = async call => {
  try {
    await call();
    return null;
  } catch (error) {
    return { status: error.statusCode, name: error.cause?.name, message: error.cause?.message };
  }
};
const arrayFields = await failure(() => client.getEntities({ fields: ['metadata.tags[0]'] }));
const removal = await failure(() => client.removeEntityByUid(payments.metadata.uid));

console.log(
  JSON.stringify({
    experimental: names(experimental.items),
    experimentalKeys: Object.keys(experimental.items[0] ?? {}).sort(),
    payments: {
      name: payments?.metadata?.name,
      uid: payments?.metadata?.uid,
      owner: payments?.spec?.owner,
      relations: (payments?.relations ?? []).map(r => `${r.type} ${r.targetRef}`).sort(),
    },
    missing: missing ?? null,
    firstPage: names(first.items),
    totalItems: first.totalItems,
    secondPage: names(second.items),
    byRefs: names(byRefs.items),
    facets: facets.facets,
    search: names(search.items).sort(),
    offsetPage: names(offsetPage.items),
    predicate: {
      first: names(predicate.items),
      next: names(predicateNext.items),
      totalItems: predicate.totalItems,
    },
    predicateFacets: predicateFacets.facets,
    filteredRefs: names(filteredRefs.items),
    ownerSearch: names(ownerSearch.items).sort(),
    byDisplayName: names(byDisplayName.items),
    location: location && { type: location.type, target: location.target },
    ancestry: {
      root: ancestry.rootEntityRef,
      items: ancestry.items.map(item => [item.entity.metadata.name, item.parentEntityRefs]),
    },
    arrayFields,
    removal,
  }),
);
