package node

import (
	"google.golang.org/grpc"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
)

// dataPlane lists the methods agents use: the meta-policies' Action::"data"
// group. Every other method of a served service is administrative
// (Action::"admin"), so a method added to an API is closed to agents until
// it is listed here.
var dataPlane = map[string]bool{
	authzv1.AuthorizationService_Check_FullMethodName:      true,
	authzv1.AuthorizationService_CheckBatch_FullMethodName: true,
}

func authzServiceDesc() grpc.ServiceDesc { return authzv1.AuthorizationService_ServiceDesc }

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
