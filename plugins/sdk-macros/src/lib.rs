//! `#[sluice_plugin::map]`: a stateless plugin written as one function.
use proc_macro::TokenStream;
use quote::{format_ident, quote};
use syn::{ItemFn, parse_macro_input};

/// Makes `fn name(record: Record) -> Result<T, E>` the plugin: every record
/// goes through the function; `T` is anything that becomes an `Out` (a
/// `Record`, `Out::Drop`, `Out::Many`), `E` anything that becomes an `Error`
/// (a `&str`, a `String`, an error type), the record's failure. The plugin
/// takes no config. It is exported as the crate's component, and natively
/// it is the type `Name` (the function's name in CamelCase), for
/// `sluice_plugin::testing::run::<Name>`.
#[proc_macro_attribute]
pub fn map(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return syn::Error::new(proc_macro2::Span::call_site(), "#[sluice_plugin::map] takes no arguments")
            .to_compile_error()
            .into();
    }
    let function = parse_macro_input!(item as ItemFn);
    if function.sig.inputs.len() != 1 {
        return syn::Error::new_spanned(&function.sig, "a #[sluice_plugin::map] function takes one argument, the record")
            .to_compile_error()
            .into();
    }
    let name = &function.sig.ident;
    let type_name = format_ident!("{}", camel_case(&name.to_string()));
    let doc = format!("The plugin made of [`{name}`].");
    quote! {
        #function

        #[doc = #doc]
        pub struct #type_name;

        impl ::sluice_plugin::Transform for #type_name {
            fn init(_config: &::sluice_plugin::Config) -> ::std::result::Result<Self, ::sluice_plugin::Error> {
                ::std::result::Result::Ok(#type_name)
            }

            fn transform(
                &mut self,
                record: ::sluice_plugin::Record,
            ) -> ::std::result::Result<::sluice_plugin::Out, ::sluice_plugin::Error> {
                #name(record).map(::std::convert::Into::into).map_err(::std::convert::Into::into)
            }
        }

        ::sluice_plugin::export!(#type_name);
    }
    .into()
}

fn camel_case(snake: &str) -> String {
    snake
        .split('_')
        .filter(|word| !word.is_empty())
        .map(|word| word[..1].to_uppercase() + &word[1..])
        .collect()
}
