// Judges entities as Backstage's catalog does, with the @backstage/catalog-model that
// tests/backstage_client installs: the envelope, the entity policies in the catalog's order,
// the built-in kinds' schemas, then the references BuiltinKindsEntityProcessor turns into
// relations. Reads {name: entity} as JSON on stdin; prints {name: null | "error message"}.
const path = require('path');
const model = require(path.join(__dirname, '..', '..', 'backstage_client', 'node_modules',
  '@backstage', 'catalog-model'));

const envelope = model.entityEnvelopeSchemaValidator();
const policies = model.EntityPolicies.allOf([
  new model.SchemaValidEntityPolicy(),
  new model.DefaultNamespaceEntityPolicy(),
  new model.NoForeignRootFieldsEntityPolicy(),
  new model.FieldFormatEntityPolicy(),
]);
const validators = [
  model.apiEntityV1alpha1Validator, model.componentEntityV1alpha1Validator,
  model.resourceEntityV1alpha1Validator, model.groupEntityV1alpha1Validator,
  model.locationEntityV1alpha1Validator, model.userEntityV1alpha1Validator,
  model.systemEntityV1alpha1Validator, model.domainEntityV1alpha1Validator,
];
// BuiltinKindsEntityProcessor.postProcessEntity: field and default kind, per kind.
const relations = {
  Component: [['owner', 'Group'], ['subcomponentOf', 'Component'], ['providesApis', 'API'],
    ['consumesApis', 'API'], ['dependsOn'], ['dependencyOf'], ['system', 'System']],
  API: [['owner', 'Group'], ['system', 'System']],
  Resource: [['owner', 'Group'], ['dependsOn'], ['dependencyOf'], ['system', 'System']],
  User: [['memberOf', 'Group']],
  Group: [['parent', 'Group'], ['children', 'Group'], ['members', 'User']],
  System: [['owner', 'Group'], ['domain', 'Domain']],
  Domain: [['owner', 'Group'], ['subdomainOf', 'Domain']],
};

async function judge(entity) {
  if (typeof entity !== 'object' || entity === null || Array.isArray(entity)) {
    throw new Error(`Expected object at root, got ${typeof entity}`);
  }
  envelope(entity);
  const checked = await policies.enforce(entity);
  let recognized = false;
  for (const validator of validators) {
    if (await validator.check(checked)) {
      recognized = true;
      break;
    }
  }
  if (!recognized) {
    throw new Error('No processor recognized the entity as valid, possibly caused by a foreign kind or apiVersion');
  }
  for (const [field, defaultKind] of relations[checked.kind] ?? []) {
    const targets = checked.spec[field];
    if (!targets) continue;
    for (const target of [targets].flat()) {
      model.parseEntityRef(target, { defaultKind, defaultNamespace: checked.metadata.namespace });
    }
  }
}

(async () => {
  const input = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const verdicts = {};
  for (const [name, entity] of Object.entries(input)) {
    try {
      await judge(entity);
      verdicts[name] = null;
    } catch (error) {
      verdicts[name] = String(error.message);
    }
  }
  process.stdout.write(JSON.stringify(verdicts));
})();
