// Microsoft Graph application permissions for the bridge's identity, granted with the Microsoft Graph
// Bicep extension. Deploying this module needs an admin who can grant app roles (Privileged Role
// Administrator, or Application Administrator with consent rights); teams whose admin grants them
// separately deploy with grantGraphPermissions=false. It is its own module because creating an
// identity and granting it in one module can fail once ("Not a valid reference update").
extension microsoftGraphV1

@description('Object id of the managed identity that receives the app roles.')
param principalId string

@description('Course activity writes, learning content lookups, user lookups: nothing more.')
param appRoles array = [
  'LearningSelfInitiatedCourse.ReadWrite.All'
  'LearningContent.Read.All'
  'User.Read.All'
]

@description('Also grant LearningContent.ReadWrite.All, which `catalog push` and the registerContent source option need to create Viva Learning content. Off unless asked for.')
param contentWrites bool = false

@description('Also grant LearningAssignedCourse.ReadWrite.All, the least permission that writes assigned courses (learningAssignment: "Create learningCourseActivity", Permissions). Off unless asked for; the app setting BRIDGE_ASSIGNMENTS_ENABLED follows the same parameter.')
param assignments bool = false

var contentRoles = contentWrites ? ['LearningContent.ReadWrite.All'] : []
var assignmentRoles = assignments ? ['LearningAssignedCourse.ReadWrite.All'] : []
var roles = concat(appRoles, contentRoles, assignmentRoles)

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: '00000003-0000-0000-c000-000000000000'
}

resource grants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for role in roles: {
  principalId: principalId
  resourceId: graph.id
  appRoleId: filter(graph.appRoles, candidate => candidate.value == role)[0].id
}]
