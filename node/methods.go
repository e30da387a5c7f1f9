package node

import (
	"google.golang.org/grpc"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
	memoryv1 "github.com/creto-systems/creto/api/creto/memory/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	storagev1 "github.com/creto-systems/creto/api/creto/storage/v1"
	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
)

// dataPlane lists the methods agents use: the meta-policies' Action::"data"
// group. Every other method of a served service is administrative
// (Action::"admin"), so a method added to an API is closed to agents until
// it is listed here.
//
// NHI: lookups, keys, verification, signing as oneself and delegating
// one's own authority are data; registering, changing and revoking agents,
// issuing tokens, rotating keys and listing agents are admin. The NHI
// adapter makes the per-caller checks (an agent signs and delegates only
// as itself, revokes only its own grants and tokens). Memory is all data:
// the service scopes every call to its caller. The vault's VaultService is
// all data too — the vault checks ownership, NHI grants ("vault:read" …)
// and delegations on every call, GetAccessLog included (audit access) —
// while its VaultAdminService, the seal, is all admin. The audit log is
// all data: the service scopes Log and Query to the caller (an agent logs
// and reads its own records; operators, its auditors, everything), and
// proofs, verification, checkpoints and keys are public. Storage is all
// data: the service checks ownership and NHI delegations ("storage:read" …)
// on every call, presigned URLs included. Consensus's ConsensusService
// (timestamps, ordering, status, reading events) is data; its
// ConsensusAdminService, membership, is admin.
var dataPlane = map[string]bool{
	authzv1.AuthorizationService_Check_FullMethodName:      true,
	authzv1.AuthorizationService_CheckBatch_FullMethodName: true,

	nhiv1.NhiService_ResolveToken_FullMethodName:          true,
	nhiv1.NhiService_GetAgent_FullMethodName:              true,
	nhiv1.NhiService_IsRegistered_FullMethodName:          true,
	nhiv1.NhiService_IsRevoked_FullMethodName:             true,
	nhiv1.NhiService_GetDelegationChain_FullMethodName:    true,
	nhiv1.NhiService_VerifyDelegation_FullMethodName:      true,
	nhiv1.NhiService_CreateDelegation_FullMethodName:      true,
	nhiv1.NhiService_RevokeDelegation_FullMethodName:      true,
	nhiv1.NhiService_GetPublicKeys_FullMethodName:         true,
	nhiv1.NhiService_ListPublicKeyVersions_FullMethodName: true,
	nhiv1.NhiService_Sign_FullMethodName:                  true,
	nhiv1.NhiService_Verify_FullMethodName:                true,
	nhiv1.NhiService_RevokeToken_FullMethodName:           true,

	memoryv1.MemoryService_Store_FullMethodName:            true,
	memoryv1.MemoryService_StoreBatch_FullMethodName:       true,
	memoryv1.MemoryService_Query_FullMethodName:            true,
	memoryv1.MemoryService_Get_FullMethodName:              true,
	memoryv1.MemoryService_Delete_FullMethodName:           true,
	memoryv1.MemoryService_GetReasoning_FullMethodName:     true,
	memoryv1.MemoryService_OversightContext_FullMethodName: true,

	vaultv1.VaultService_GetSecret_FullMethodName:           true,
	vaultv1.VaultService_GetSecrets_FullMethodName:          true,
	vaultv1.VaultService_CreateSecret_FullMethodName:        true,
	vaultv1.VaultService_UpdateSecret_FullMethodName:        true,
	vaultv1.VaultService_DeleteSecret_FullMethodName:        true,
	vaultv1.VaultService_UndeleteSecret_FullMethodName:      true,
	vaultv1.VaultService_GetSecretMetadata_FullMethodName:   true,
	vaultv1.VaultService_ListSecrets_FullMethodName:         true,
	vaultv1.VaultService_GetDelegatedSecrets_FullMethodName: true,
	vaultv1.VaultService_CreateDelegation_FullMethodName:    true,
	vaultv1.VaultService_RevokeDelegation_FullMethodName:    true,
	vaultv1.VaultService_GetDelegation_FullMethodName:       true,
	vaultv1.VaultService_RotateSecret_FullMethodName:        true,
	vaultv1.VaultService_GetRotationSchedule_FullMethodName: true,
	vaultv1.VaultService_ComputeMac_FullMethodName:          true,
	vaultv1.VaultService_GetAccessLog_FullMethodName:        true,

	auditv1.AuditService_Log_FullMethodName:                      true,
	auditv1.AuditService_LogBatch_FullMethodName:                 true,
	auditv1.AuditService_Query_FullMethodName:                    true,
	auditv1.AuditService_GetProof_FullMethodName:                 true,
	auditv1.AuditService_Verify_FullMethodName:                   true,
	auditv1.AuditService_GetCheckpoint_FullMethodName:            true,
	auditv1.AuditService_GetVerifierKey_FullMethodName:           true,
	storagev1.StorageService_Store_FullMethodName:                true,
	storagev1.StorageService_Retrieve_FullMethodName:             true,
	storagev1.StorageService_Delete_FullMethodName:               true,
	storagev1.StorageService_List_FullMethodName:                 true,
	storagev1.StorageService_StoreStream_FullMethodName:          true,
	storagev1.StorageService_RetrieveStream_FullMethodName:       true,
	storagev1.StorageService_GetMetadata_FullMethodName:          true,
	storagev1.StorageService_UpdateMetadata_FullMethodName:       true,
	storagev1.StorageService_GeneratePresignedUrl_FullMethodName: true,
	consensusv1.ConsensusService_GetTimestamp_FullMethodName:     true,
	consensusv1.ConsensusService_OrderEvents_FullMethodName:      true,
	consensusv1.ConsensusService_GetClusterStatus_FullMethodName: true,
	consensusv1.ConsensusService_ReadEvents_FullMethodName:       true,
}

func authzServiceDesc() grpc.ServiceDesc  { return authzv1.AuthorizationService_ServiceDesc }
func nhiServiceDesc() grpc.ServiceDesc    { return nhiv1.NhiService_ServiceDesc }
func memoryServiceDesc() grpc.ServiceDesc { return memoryv1.MemoryService_ServiceDesc }
func vaultServiceDesc() grpc.ServiceDesc  { return vaultv1.VaultService_ServiceDesc }
func vaultAdminServiceDesc() grpc.ServiceDesc {
	return vaultv1.VaultAdminService_ServiceDesc
}
func storageServiceDesc() grpc.ServiceDesc   { return storagev1.StorageService_ServiceDesc }
func consensusServiceDesc() grpc.ServiceDesc { return consensusv1.ConsensusService_ServiceDesc }
func consensusAdminServiceDesc() grpc.ServiceDesc {
	return consensusv1.ConsensusAdminService_ServiceDesc
}

// methodClasses classifies every method of the served services, and the
// reflection services' (which any authenticated caller may use).
func methodClasses(services []grpc.ServiceDesc) map[string]string {
	out := map[string]string{}
	add := func(d grpc.ServiceDesc, class func(method string) string) {
		for _, m := range d.Methods {
			full := "/" + d.ServiceName + "/" + m.MethodName
			out[full] = class(full)
		}
		for _, s := range d.Streams {
			full := "/" + d.ServiceName + "/" + s.StreamName
			out[full] = class(full)
		}
	}
	for _, d := range services {
		add(d, func(full string) string {
			if dataPlane[full] {
				return classData
			}
			return classAdmin
		})
	}
	for _, d := range []grpc.ServiceDesc{reflectionv1.ServerReflection_ServiceDesc, reflectionv1alpha.ServerReflection_ServiceDesc} {
		add(d, func(string) string { return classData })
	}
	return out
}
